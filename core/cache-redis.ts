import { TUNABLES } from '../config/tunables.ts'
import type { RedisClient } from './redis-connect.ts'
import type { SharedCache } from './credential-cache.ts'

/**
 * The Redis layer of the credential cache. Values: `v:<json>` a record, `n` a known absence, `t` a tombstone
 * written by a revocation (it blocks every write for a while, so no lookup that was in flight can put the
 * revoked record back). Every key lives under the deployment's prefix.
 */
export const TOMBSTONE_TTL_MS = TUNABLES.invalidation.tombstoneTtlMs

export function redisSharedCache(redis: RedisClient, prefix: string): SharedCache & { tombstone(keys: string[]): Promise<void> } {
  const k = (key: string) => `${prefix}cache:${key}`
  return {
    async get(key) {
      const raw = await redis.get(k(key))
      if (raw === null || raw === 't') return undefined
      return raw === 'n' ? null : raw.slice(2)
    },
    async setIfAbsent(key, value, ttlMs) {
      await redis.set(k(key), value === null ? 'n' : `v:${value}`, 'PX', ttlMs, 'NX')
    },
    async tombstone(keys) {
      if (!keys.length) return
      const m = redis.multi()
      for (const key of keys) m.set(k(key), 't', 'PX', TOMBSTONE_TTL_MS)
      const results = (await m.exec()) ?? []
      const failed = results.find(([err]) => err)
      if (failed) throw failed[0]
    },
  }
}
