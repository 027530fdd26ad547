import { KeygateError } from './errors.ts'
import type { Queryable } from './db.ts'

export interface User {
  id: string
  username: string
  email: string | null
  full_name: string | null
  is_active: boolean
  is_superuser: boolean
  tokens_valid_after: Date
  created_at: Date
  updated_at: Date
  last_login_at: Date | null
}

export interface UserWithPassword extends User { password_hash: string }

const COLUMNS = 'id, username, email, full_name, is_active, is_superuser, tokens_valid_after, created_at, updated_at, last_login_at'

export interface NewUser {
  username: string
  email?: string | null
  fullName?: string | null
  passwordHash: string
  isSuperuser?: boolean
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505'
}

/** Users table access. Every method takes the executor so it can run inside a caller's transaction. */
export const userStore = {
  /** @throws KeygateError USER_EXISTS when the username or email is taken (case-insensitively). */
  async create(db: Queryable, u: NewUser, now: Date): Promise<User> {
    try {
      const { rows } = await db.query<User>(
        `INSERT INTO users (username, email, full_name, password_hash, is_superuser, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ${COLUMNS}`,
        [u.username, u.email ?? null, u.fullName ?? null, u.passwordHash, u.isSuperuser ?? false, now],
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

  /** Finds a user by username or email, case-insensitively, with the password hash for login. */
  async findForLogin(db: Queryable, login: { username?: string; email?: string }): Promise<UserWithPassword | null> {
    const { rows } = login.username !== undefined
      ? await db.query<UserWithPassword>(`SELECT ${COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)`, [login.username])
      : await db.query<UserWithPassword>(`SELECT ${COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)`, [login.email ?? ''])
    return rows[0] ?? null
  },

  async exists(db: Queryable, username: string): Promise<boolean> {
    const { rows } = await db.query('SELECT 1 FROM users WHERE lower(username) = lower($1)', [username])
    return rows.length > 0
  },

  async list(db: Queryable, limit: number, offset: number): Promise<User[]> {
    const { rows } = await db.query<User>(`SELECT ${COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2`, [limit, offset])
    return rows
  },

  async recordLogin(db: Queryable, id: string, now: Date): Promise<void> {
    await db.query('UPDATE users SET last_login_at = $2 WHERE id = $1', [id, now])
  },

  /** @throws KeygateError USER_EXISTS when the new email is taken. */
  async updateProfile(db: Queryable, id: string, patch: { full_name?: string | null; email?: string | null }, now: Date): Promise<User | null> {
    try {
      const { rows } = await db.query<User>(
        `UPDATE users SET full_name = CASE WHEN $2 THEN $3 ELSE full_name END,
                          email = CASE WHEN $4 THEN $5 ELSE email END, updated_at = $6
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, 'full_name' in patch, patch.full_name ?? null, 'email' in patch, patch.email ?? null, now],
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

  async setSuperuser(db: Queryable, id: string, superuser: boolean, now: Date): Promise<User | null> {
    const { rows } = await db.query<User>(`UPDATE users SET is_superuser = $2, updated_at = $3 WHERE id = $1 RETURNING ${COLUMNS}`, [id, superuser, now])
    return rows[0] ?? null
  },
}
