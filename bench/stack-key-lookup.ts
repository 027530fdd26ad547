import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/**
 * API keys as a Node team checks them without Keygate, for the stack rows of `npm run bench`: the SHA-256 of
 * the key (the column Keygate fills), looked up in PostgreSQL, with an in-process LRU in front that keeps every
 * answer (found or not) for `ttlMs`. Expiry, revocation and the user's state are checked from the cached row on
 * every request.
 *
 * What it does not do, unlike Keygate: a revocation reaches it only when the LRU entry ages out (up to `ttlMs`;
 * nothing tells it sooner), a malformed key still costs a lookup (no checksum), unknown keys are not limited per
 * client, and there is no Redis level shared between instances.
 */
export interface StackKeyLookup {
  /** The user id of an active key, or null (unknown, revoked, expired, user inactive). */
  userOf(key: string): Promise<string | null>
}

interface Row { user_id: string; is_active: boolean; revoked_at: Date | null; expires_at: Date | null }
interface Entry { row: Row | null }

/** `query`: the pool's query, on the schema Keygate uses (`search_path`). */
export function stackKeyLookup(deps: { query(text: string, values: unknown[]): Promise<{ rows: Row[] }>; now?: () => number; max?: number; ttlMs?: number }): StackKeyLookup {
  const now = deps.now ?? Date.now
  const cache = new LRUCache<string, Entry>({ max: deps.max ?? 10_000, ttl: deps.ttlMs ?? 60_000 })
  return {
    async userOf(key) {
      const digest = hash('sha256', key, 'hex')
      let entry = cache.get(digest)
      if (!entry) {
        const { rows } = await deps.query(
          'SELECT k.user_id, u.is_active, k.revoked_at, k.expires_at FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1',
          [digest],
        )
        entry = { row: rows[0] ?? null }
        cache.set(digest, entry)
      }
      const row = entry.row
      const t = now()
      if (!row || !row.is_active || (row.revoked_at && row.revoked_at.getTime() <= t) || (row.expires_at && row.expires_at.getTime() <= t)) return null
      return row.user_id
    },
  }
}
