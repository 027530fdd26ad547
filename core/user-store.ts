import { KeygateError } from './errors.ts'
import type { Queryable } from './db.ts'
import { canonicalIdentifier } from './identifier.ts'

/** The profile, preference and limit fields of the contract: stored and returned, opaque to Keygate. */
export interface UserProfile {
  full_name: string | null
  bio: string | null
  avatar_url: string | null
  phone_number: string | null
  default_llm_provider: string | null
  default_profile_id: string | null
  daily_message_limit: number | null
  monthly_message_limit: number | null
  max_file_size_mb: number | null
}

export interface User extends UserProfile {
  id: string
  username: string
  /** Always set, in canonical form (see identifier.ts). */
  email: string
  is_active: boolean
  is_verified: boolean
  is_superuser: boolean
  tokens_valid_after: Date
  created_at: Date
  updated_at: Date
  last_login_at: Date | null
}

export interface UserWithPassword extends User { password_hash: string }

export const PROFILE_FIELDS = ['full_name', 'bio', 'avatar_url', 'phone_number', 'default_llm_provider', 'default_profile_id', 'daily_message_limit', 'monthly_message_limit', 'max_file_size_mb'] as const satisfies ReadonlyArray<keyof UserProfile>

const COLUMNS = `id, username, email, ${PROFILE_FIELDS.join(', ')}, is_active, is_verified, is_superuser, tokens_valid_after, created_at, updated_at, last_login_at`

export interface NewUser {
  username: string
  email: string
  passwordHash: string
  isSuperuser?: boolean
  profile?: Partial<UserProfile>
}

/** What `updateProfile` may change (PUT /me). */
export type ProfilePatch = Partial<UserProfile> & { email?: string }

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505'
}

/** Users table access. Every method takes the executor so it can run inside a caller's transaction. */
export const userStore = {
  /** @throws KeygateError USER_EXISTS when the username or email is taken (in canonical form). */
  async create(db: Queryable, u: NewUser, now: Date): Promise<User> {
    const profile = PROFILE_FIELDS.map((f) => u.profile?.[f] ?? null)
    try {
      const { rows } = await db.query<User>(
        `INSERT INTO users (username, email, password_hash, is_superuser, created_at, updated_at, ${PROFILE_FIELDS.join(', ')})
         VALUES ($1, $2, $3, $4, $5, $5, ${PROFILE_FIELDS.map((_, i) => `$${i + 6}`).join(', ')}) RETURNING ${COLUMNS}`,
        [u.username, canonicalIdentifier(u.email), u.passwordHash, u.isSuperuser ?? false, now, ...profile],
      )
      return rows[0]!
    } catch (err) {
      if (isUniqueViolation(err)) throw new KeygateError('USER_EXISTS')
      throw err
    }
  },

  async findById(db: Queryable, id: string): Promise<User | null> {
    const { rows } = await db.query<User>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id])
    return rows[0] ?? null
  },

  /**
   * Finds a user by username or email, compared in canonical form, with the password hash for login. Stored
   * usernames and emails are ASCII, where PostgreSQL's `lower()` agrees with the canonical form.
   */
  async findForLogin(db: Queryable, login: { username: string } | { email: string }): Promise<UserWithPassword | null> {
    const { rows } = 'username' in login
      ? await db.query<UserWithPassword>(`SELECT ${COLUMNS}, password_hash FROM users WHERE lower(username) = $1`, [canonicalIdentifier(login.username)])
      : await db.query<UserWithPassword>(`SELECT ${COLUMNS}, password_hash FROM users WHERE lower(email) = $1`, [canonicalIdentifier(login.email)])
    return rows[0] ?? null
  },

  /** The canonical username of the user `login` names (by username or email), or null: login attempts are counted under it. */
  async canonicalUsername(db: Queryable, login: { username: string } | { email: string }): Promise<string | null> {
    const { rows } = 'username' in login
      ? await db.query<{ name: string }>('SELECT lower(username) AS name FROM users WHERE lower(username) = $1', [canonicalIdentifier(login.username)])
      : await db.query<{ name: string }>('SELECT lower(username) AS name FROM users WHERE lower(email) = $1', [canonicalIdentifier(login.email)])
    return rows[0]?.name ?? null
  },

  async exists(db: Queryable, username: string): Promise<boolean> {
    const { rows } = await db.query('SELECT 1 FROM users WHERE lower(username) = $1', [canonicalIdentifier(username)])
    return rows.length > 0
  },

  /** Newest first. */
  async list(db: Queryable, limit: number, offset: number): Promise<User[]> {
    const { rows } = await db.query<User>(`SELECT ${COLUMNS} FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`, [limit, offset])
    return rows
  },

  async count(db: Queryable): Promise<number> {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users')
    return rows[0]?.n ?? 0
  },

  /** The name of each user's usable key (the newest when several), by user id; users without one are absent. */
  async activeKeyNames(db: Queryable, userIds: readonly string[], now: Date): Promise<Map<string, string>> {
    if (userIds.length === 0) return new Map()
    const { rows } = await db.query<{ user_id: string; name: string }>(
      `SELECT DISTINCT ON (user_id) user_id, name FROM api_keys
       WHERE user_id = ANY($1::uuid[]) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
       ORDER BY user_id, created_at DESC, id DESC`,
      [userIds, now],
    )
    return new Map(rows.map((r) => [r.user_id, r.name]))
  },

  async recordLogin(db: Queryable, id: string, now: Date): Promise<void> {
    await db.query('UPDATE users SET last_login_at = $2 WHERE id = $1', [id, now])
  },

  /** Sets the fields present in `patch` (null clears a profile field). @throws KeygateError USER_EXISTS when the new email is taken. */
  async updateProfile(db: Queryable, id: string, patch: ProfilePatch, now: Date): Promise<User | null> {
    const fields = (['email', ...PROFILE_FIELDS] as const).filter((f) => patch[f] !== undefined)
    const values = fields.map((f) => (f === 'email' ? canonicalIdentifier(patch.email!) : patch[f]))
    try {
      const { rows } = await db.query<User>(
        `UPDATE users SET ${[...fields.map((f, i) => `${f} = $${i + 3}`), 'updated_at = $2'].join(', ')}
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, now, ...values],
      )
      return rows[0] ?? null
    } catch (err) {
      if (isUniqueViolation(err)) throw new KeygateError('USER_EXISTS')
      throw err
    }
  },

  /** Sets the password; the caller ends the sessions that must end. */
  async setPassword(db: Queryable, id: string, passwordHash: string, now: Date): Promise<void> {
    await db.query('UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1', [id, passwordHash, now])
  },

  async passwordHash(db: Queryable, id: string): Promise<string | null> {
    const { rows } = await db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [id])
    return rows[0]?.password_hash ?? null
  },

  /** Activates or deactivates; deactivation also kills every token issued before `now`. */
  async setActive(db: Queryable, id: string, active: boolean, now: Date): Promise<User | null> {
    const { rows } = await db.query<User>(
      `UPDATE users SET is_active = $2, updated_at = $3,
              tokens_valid_after = CASE WHEN $2 THEN tokens_valid_after ELSE $3 END
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, active, now],
    )
    return rows[0] ?? null
  },

  async setFlags(db: Queryable, id: string, flags: { is_superuser?: boolean; is_verified?: boolean }, now: Date): Promise<User | null> {
    const { rows } = await db.query<User>(
      `UPDATE users SET is_superuser = COALESCE($2, is_superuser), is_verified = COALESCE($3, is_verified), updated_at = $4 WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, flags.is_superuser ?? null, flags.is_verified ?? null, now],
    )
    return rows[0] ?? null
  },
}
