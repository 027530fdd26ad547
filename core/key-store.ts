import { KeygateError } from './errors.ts'
import type { Queryable, Db } from './db.ts'
import type { KeyQuota } from './key-limits.ts'
import type { RateLimitSpec } from './rate-limit.ts'

export interface ApiKeyRow {
  id: string
  user_id: string
  name: string
  display: string
  scopes: string[]
  created_at: Date
  last_used_at: Date | null
  expires_at: Date | null
  revoked_at: Date | null
  rate_limit: RateLimitSpec | null
  quota: KeyQuota | null
}

/** What the gateway needs to decide on a key, joined with its user: cached as one entry. */
export interface KeyRecord {
  keyId: string
  keyHash: string
  userId: string
  username: string
  userActive: boolean
  scopes: string[]
  expiresAt: number | null
  revokedAt: number | null
  /** The key's own rate limit and quotas (absent in entries cached before they existed: none). */
  rateLimit?: RateLimitSpec | null
  quota?: KeyQuota | null
}

const COLUMNS = 'id, user_id, name, display, scopes, created_at, last_used_at, expires_at, revoked_at, rate_limit, quota'

const ms = (d: Date | null) => (d === null ? null : d.getTime())

export const keyStore = {
  /**
   * Inserts a key unless the user already holds `maxActive` active keys (checked under a row lock on the
   * user, so two concurrent creates cannot both pass).
   * @throws KeygateError KEY_LIMIT_REACHED
   */
  async create(db: Db, k: { userId: string; name: string; hash: string; display: string; scopes: string[]; expiresAt: Date | null; maxActive: number; rateLimit?: RateLimitSpec | null; quota?: KeyQuota | null }, now: Date): Promise<ApiKeyRow> {
    return db.transaction(async (tx) => {
      await tx.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [k.userId])
      const { rows: active } = await tx.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)',
        [k.userId, now],
      )
      if ((active[0]?.n ?? 0) >= k.maxActive) throw new KeygateError('KEY_LIMIT_REACHED')
      const { rows } = await tx.query<ApiKeyRow>(
        `INSERT INTO api_keys (user_id, name, key_hash, display, scopes, created_at, expires_at, rate_limit, quota)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
        [k.userId, k.name, k.hash, k.display, k.scopes, now, k.expiresAt, json(k.rateLimit), json(k.quota)],
      )
      return rows[0]!
    })
  },

  /**
   * Replaces an active key by a new one with the same name, scopes and expiry; the old key stays valid for
   * `graceMs` more (0: revoked now). The old key in its grace period is not counted against the key limit (it is
   * on its way out), but only one such key may stand beyond the limit: a roll with a grace period is refused
   * while the user's other active keys (those in a grace period included) already fill `maxActive`, so rolling
   * a key again and again during its grace period cannot pile up keys. A roll without grace never adds a key.
   * Returns null when the user has no such active key. Runs in the caller's transaction `tx`.
   * @throws KeygateError KEY_LIMIT_REACHED
   */
  async roll(tx: Queryable, k: { userId: string; keyId: string; hash: string; display: string; graceMs: number; maxActive: number; rateLimit?: RateLimitSpec | null; quota?: KeyQuota | null }, now: Date): Promise<{ row: ApiKeyRow; oldHash: string } | null> {
    // The same lock as create(): concurrent rolls and creates of one user are counted one after the other.
    await tx.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [k.userId])
    const { rows: old } = await tx.query<{ name: string; scopes: string[]; expires_at: Date | null; key_hash: string; rate_limit: RateLimitSpec | null; quota: KeyQuota | null }>(
      'SELECT name, scopes, expires_at, key_hash, rate_limit, quota FROM api_keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3) FOR UPDATE',
      [k.keyId, k.userId, now],
    )
    const o = old[0]
    if (!o) return null
    if (k.graceMs > 0) {
      const { rows: others } = await tx.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM api_keys WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)',
        [k.userId, k.keyId, now],
      )
      if ((others[0]?.n ?? 0) + 1 > k.maxActive) throw new KeygateError('KEY_LIMIT_REACHED')
    }
    const until = new Date(now.getTime() + k.graceMs)
    if (k.graceMs === 0) await tx.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1', [k.keyId, now])
    else await tx.query('UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE id = $1', [k.keyId, until])
    const { rows } = await tx.query<ApiKeyRow>(
      `INSERT INTO api_keys (user_id, name, key_hash, display, scopes, created_at, expires_at, rate_limit, quota)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      // The successor keeps the rolled key's limits unless the roll gives new ones.
      [k.userId, o.name, k.hash, k.display, o.scopes, now, o.expires_at, json(k.rateLimit === undefined ? o.rate_limit : k.rateLimit), json(k.quota === undefined ? o.quota : k.quota)],
    )
    return { row: rows[0]!, oldHash: o.key_hash }
  },

  async listByUser(db: Queryable, userId: string): Promise<ApiKeyRow[]> {
    const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at, id`, [userId])
    return rows
  },

  /** The key with this hash and its user, or null when no key has it. Revoked and expired keys are returned too. */
  async findByHash(db: Queryable, hash: string): Promise<KeyRecord | null> {
    return (await keyStore.findByHashes(db, [hash])).get(hash) ?? null
  },

  /**
   * The keys with these hashes and their users, in one statement (the gateway's lookups of cold keys, batched):
   * a hash no key has is absent from the map. Revoked and expired keys are returned too.
   */
  async findByHashes(db: Queryable, hashes: readonly string[]): Promise<Map<string, KeyRecord>> {
    const { rows } = await db.query<{ id: string; key_hash: string; user_id: string; username: string; is_active: boolean; scopes: string[]; expires_at: Date | null; revoked_at: Date | null; rate_limit: RateLimitSpec | null; quota: KeyQuota | null }>(
      `SELECT k.id, k.key_hash, k.user_id, u.username, u.is_active, k.scopes, k.expires_at, k.revoked_at, k.rate_limit, k.quota
       FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ANY($1::text[])`,
      [hashes],
    )
    const found = new Map<string, KeyRecord>()
    for (const r of rows) found.set(r.key_hash, { keyId: r.id, keyHash: r.key_hash, userId: r.user_id, username: r.username, userActive: r.is_active, scopes: r.scopes, expiresAt: ms(r.expires_at), revokedAt: ms(r.revoked_at), rateLimit: r.rate_limit, quota: r.quota })
    return found
  },

  /** Revokes one of the user's active keys; null when the user has no such active key (another user's id included). */
  async revoke(db: Queryable, userId: string, keyId: string, now: Date): Promise<{ id: string; key_hash: string } | null> {
    const { rows } = await db.query<{ id: string; key_hash: string }>(
      'UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id, key_hash',
      [keyId, userId, now],
    )
    return rows[0] ?? null
  },

  /** Revokes every active key of a user (deactivation); returns their hashes for cache invalidation. */
  async revokeAllOfUser(db: Queryable, userId: string, now: Date): Promise<string[]> {
    const { rows } = await db.query<{ key_hash: string }>(
      'UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING key_hash',
      [userId, now],
    )
    return rows.map((r) => r.key_hash)
  },

  async idByHash(db: Queryable, userId: string, hash: string): Promise<string | null> {
    const { rows } = await db.query<{ id: string }>('SELECT id FROM api_keys WHERE user_id = $1 AND key_hash = $2', [userId, hash])
    return rows[0]?.id ?? null
  },

  /**
   * Sets an active key's own limits (each left as it is when undefined, removed when null). Returns the key's
   * row and hash (for the caches), or null when the user has no such active key. Runs in the caller's transaction.
   */
  async setLimits(tx: Queryable, userId: string, keyId: string, limits: { rateLimit?: RateLimitSpec | null; quota?: KeyQuota | null }, now: Date): Promise<{ row: ApiKeyRow; keyHash: string } | null> {
    const { rows } = await tx.query<ApiKeyRow & { key_hash: string }>(
      `UPDATE api_keys SET rate_limit = CASE WHEN $3 THEN $4::jsonb ELSE rate_limit END, quota = CASE WHEN $5 THEN $6::jsonb ELSE quota END
       WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $7) RETURNING ${COLUMNS}, key_hash`,
      [keyId, userId, limits.rateLimit !== undefined, json(limits.rateLimit), limits.quota !== undefined, json(limits.quota), now],
    )
    const r = rows[0]
    if (!r) return null
    const { key_hash: keyHash, ...row } = r
    return { row, keyHash }
  },

  /** Adds counted quota requests per key and period (see quota-usage-recorder.ts). */
  async addUsage(db: Queryable, rows: ReadonlyArray<{ keyId: string; period: 'day' | 'month'; start: string; requests: number }>): Promise<void> {
    if (rows.length === 0) return
    await db.query(
      `INSERT INTO api_key_usage (key_id, period, period_start, requests)
       SELECT u.key_id, u.period, u.start, u.n FROM (SELECT unnest($1::uuid[]) AS key_id, unnest($2::text[]) AS period, unnest($3::date[]) AS start, unnest($4::bigint[]) AS n) u
       WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.id = u.key_id)
       ON CONFLICT (key_id, period, period_start) DO UPDATE SET requests = api_key_usage.requests + EXCLUDED.requests`,
      [rows.map((r) => r.keyId), rows.map((r) => r.period), rows.map((r) => r.start), rows.map((r) => r.requests)],
    )
  },

  /** Requests counted for the user's keys in the periods starting at `day` and `month` (YYYY-MM-DD), by key id. */
  async usageByUser(db: Queryable, userId: string, day: string, month: string): Promise<Map<string, { day: number; month: number }>> {
    const { rows } = await db.query<{ key_id: string; period: string; requests: string }>(
      `SELECT u.key_id, u.period, u.requests::text AS requests FROM api_key_usage u JOIN api_keys k ON k.id = u.key_id
       WHERE k.user_id = $1 AND ((u.period = 'day' AND u.period_start = $2::date) OR (u.period = 'month' AND u.period_start = $3::date))`,
      [userId, day, month],
    )
    const out = new Map<string, { day: number; month: number }>()
    for (const r of rows) {
      const u = out.get(r.key_id) ?? { day: 0, month: 0 }
      u[r.period as 'day' | 'month'] = Number(r.requests)
      out.set(r.key_id, u)
    }
    return out
  },

  /** Writes a batch of last-used times in one statement (see key-usage-recorder.ts). */
  async touch(db: Queryable, usage: ReadonlyMap<string, Date>): Promise<void> {
    if (usage.size === 0) return
    const ids = [...usage.keys()]
    const times = ids.map((id) => usage.get(id)!.toISOString())
    await db.query(
      `UPDATE api_keys k SET last_used_at = u.at
       FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::timestamptz[]) AS at) u
       WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`,
      [ids, times],
    )
  },
}

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v))
