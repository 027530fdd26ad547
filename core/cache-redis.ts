import { TUNABLES } from '../config/tunables.ts'
import type { RedisClient } from './redis-connect.ts'
import { batchLoader } from './batch-loader.ts'
import type { SharedCache } from './credential-cache.ts'

/**
 * The Redis layer of the credential cache. Values: `v:<json>` a record, `n` a known absence, `t` a tombstone
 * written by a revocation (it blocks every write for a while, so no lookup that was in flight can put the
 * revoked record back). Every key lives under the deployment's prefix.
 */
export const TOMBSTONE_TTL_MS = TUNABLES.invalidation.tombstoneTtlMs

export function redisSharedCache(redis: RedisClient, prefix: string): SharedCache & { tombstone(keys: string[]): Promise<void> } {
  const k = (key: string) => `${prefix}cache:${key}`
  // Reads of one turn go in one MGET (a burst of keys the in-process cache does not hold costs one command,
  // one write and one read, not one each). A Cluster spreads keys over slots, which one MGET cannot span: each
  // key is read on its own there.
  const read = redis.isCluster
    ? (key: string) => redis.get(key)
    : batchLoader<string, string>({
      async loadMany(keys) {
        const values = await redis.mget(...keys)
        const found = new Map<string, string>()
        for (let i = 0; i < keys.length; i++) if (values[i] != null) found.set(keys[i]!, values[i]!)
        return found
      },
      maxInFlight: TUNABLES.caches.sharedReadsInFlight,
      maxBatch: TUNABLES.caches.sharedReadBatchMax,
    })
  return {
    async get(key) {
      const raw = await read(k(key))
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
