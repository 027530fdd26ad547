import type { Queryable } from './db.ts'

/** What the gateway needs to decide on an access token of a session: cached as one entry. */
export interface SessionRecord {
  sessionId: string
  userId: string
  username: string
  userActive: boolean
  /** Tokens issued before this instant (ms) are dead. */
  tokensValidAfter: number
  revokedAt: number | null
}

export type RotateResult =
  | { outcome: 'rotated'; sessionId: string; userId: string }
  | { outcome: 'invalid' }
  /** A spent token came back after the retry window: the whole family was revoked. */
  | { outcome: 'reused'; sessionId: string; userId: string }

/** A login session as its owner sees it (`GET /sessions`): never a token, only times. */
export interface SessionSummary {
  id: string
  created_at: Date
  /** When its refresh token was last rotated (or the login, when it never was). */
  last_used_at: Date
  /** When its live refresh token expires: the session ends then unless refreshed. */
  expires_at: Date
}

export const sessionStore = {
  async create(db: Queryable, userId: string, now: Date): Promise<string> {
    const { rows } = await db.query<{ id: string }>('INSERT INTO sessions (user_id, created_at) VALUES ($1, $2) RETURNING id', [userId, now])
    return rows[0]!.id
  },

  async addRefreshToken(db: Queryable, sessionId: string, tokenHash: string, expiresAt: Date, now: Date): Promise<void> {
    await db.query('INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [tokenHash, sessionId, now, expiresAt])
  },

  async find(db: Queryable, sessionId: string): Promise<SessionRecord | null> {
    const { rows } = await db.query<{ id: string; user_id: string; username: string; is_active: boolean; tokens_valid_after: Date; revoked_at: Date | null }>(
      `SELECT s.id, s.user_id, u.username, u.is_active, u.tokens_valid_after, s.revoked_at
       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`,
      [sessionId],
    )
    const r = rows[0]
    if (!r) return null
    return { sessionId: r.id, userId: r.user_id, username: r.username, userActive: r.is_active, tokensValidAfter: r.tokens_valid_after.getTime(), revokedAt: r.revoked_at?.getTime() ?? null }
  },

  /**
   * Spends a refresh token and stores its successor, atomically. A token spent less than `retryWindowMs`
   * ago may be spent again (a client retrying after a lost response): its earlier successor, never used, is
   * replaced, so the family keeps one live token whatever the number of retries. Later, or once that successor
   * was itself spent (the retry is then not a lost response but a second holder), its reuse revokes the family.
   * Runs in the caller's transaction `tx` (the row locks it takes hold until that commits).
   */
  async rotate(tx: Queryable, oldHash: string, newHash: string, expiresAt: Date, now: Date, retryWindowMs: number): Promise<RotateResult> {
    const { rows } = await tx.query<{ session_id: string; user_id: string; expires_at: Date; spent_at: Date | null; revoked_at: Date | null; is_active: boolean; tokens_valid_after: Date; created_at: Date; replaced_by: string | null }>(
      `SELECT t.session_id, s.user_id, t.expires_at, t.spent_at, s.revoked_at, u.is_active, u.tokens_valid_after, t.created_at, t.replaced_by
       FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
       WHERE t.token_hash = $1 FOR UPDATE OF t, s`,
      [oldHash],
    )
    const t = rows[0]
    if (!t) return { outcome: 'invalid' }
    if (t.revoked_at !== null || !t.is_active || t.expires_at <= now || t.created_at < t.tokens_valid_after) return { outcome: 'invalid' }
    const reused = async () => {
      await tx.query(`UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reuse' WHERE id = $1`, [t.session_id, now])
      return { outcome: 'reused' as const, sessionId: t.session_id, userId: t.user_id }
    }
    if (t.spent_at !== null && now.getTime() - t.spent_at.getTime() > retryWindowMs) return reused()
    if (t.spent_at === null) {
      await tx.query('UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1', [oldHash, now])
    } else if (t.replaced_by !== null) {
      // A retry: the successor it got before is dropped, unless that one was already used.
      const { rows: earlier } = await tx.query<{ spent_at: Date | null }>('SELECT spent_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE', [t.replaced_by])
      if (earlier[0]?.spent_at) return reused()
      await tx.query('DELETE FROM refresh_tokens WHERE token_hash = $1', [t.replaced_by])
    }
    await tx.query('INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [newHash, t.session_id, now, expiresAt])
    await tx.query('UPDATE refresh_tokens SET replaced_by = $2 WHERE token_hash = $1', [oldHash, newHash])
    return { outcome: 'rotated', sessionId: t.session_id, userId: t.user_id }
  },

  /** Ends a session (logout); false when it was already ended or does not exist. */
  async revoke(db: Queryable, sessionId: string, reason: string, now: Date): Promise<boolean> {
    const { rows } = await db.query('UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING id', [sessionId, now, reason])
    return rows.length > 0
  },

  /** The user's live sessions (not ended, a refresh token not yet expired), newest first, at most `limit`. */
  async listOfUser(db: Queryable, userId: string, now: Date, limit: number): Promise<SessionSummary[]> {
    const { rows } = await db.query<SessionSummary>(
      `SELECT s.id, s.created_at, max(t.created_at) AS last_used_at, max(t.expires_at) AS expires_at
       FROM sessions s JOIN refresh_tokens t ON t.session_id = s.id
       WHERE s.user_id = $1 AND s.revoked_at IS NULL
       GROUP BY s.id, s.created_at
       HAVING max(t.expires_at) > $2
       ORDER BY s.created_at DESC LIMIT $3`,
      [userId, now, limit],
    )
    return rows
  },

  /** Ends every session of a user except `keep` (password change keeps the caller's own session). */
  async revokeAllOfUser(db: Queryable, userId: string, reason: string, now: Date, keep?: string): Promise<string[]> {
    const { rows } = await db.query<{ id: string }>(
      'UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $4 RETURNING id',
      [userId, now, reason, keep ?? null],
    )
    return rows.map((r) => r.id)
  },
}
