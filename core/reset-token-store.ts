import type { Queryable } from './db.ts'

/** `password_reset_tokens` access: tokens are stored as their SHA-256 only. */
export const resetTokenStore = {
  async create(db: Queryable, tokenHash: string, userId: string, now: Date, expiresAt: Date): Promise<void> {
    await db.query('INSERT INTO password_reset_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [tokenHash, userId, now, expiresAt])
  },

  /** The user of a usable (unspent, unexpired) token, or null. */
  async usable(db: Queryable, tokenHash: string, now: Date): Promise<string | null> {
    const { rows } = await db.query<{ user_id: string }>('SELECT user_id FROM password_reset_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2', [tokenHash, now])
    return rows[0]?.user_id ?? null
  },

  /** Spends a usable token and every other outstanding token of its user, atomically; its user, or null when it was not usable. */
  async spend(db: Queryable, tokenHash: string, now: Date): Promise<string | null> {
    const { rows } = await db.query<{ user_id: string }>(
      'UPDATE password_reset_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id',
      [tokenHash, now],
    )
    const userId = rows[0]?.user_id
    if (!userId) return null
    await db.query('UPDATE password_reset_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL', [userId, now])
    return userId
  },
}
