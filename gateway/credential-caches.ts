import type { EnvConfig } from '../config/schema.ts'
import { redisSharedCache } from '../core/cache-redis.ts'
import { credentialCache } from '../core/credential-cache.ts'
import { cacheKeyOf } from '../core/credential-keys.ts'
import type { Invalidation } from '../core/invalidation.ts'
import type { KeyRecord } from '../core/key-store.ts'
import type { Metrics } from '../core/metrics.ts'
import type { RedisClient } from '../core/redis-connect.ts'
import type { SessionRecord } from '../core/session-store.ts'

/**
 * The credential caches of one gateway instance, by deployment:
 *   Redis (REDIS_URL)  → in-process LRU → Redis → PostgreSQL;
 *   otherwise          → in-process LRU → the database.
 * The metrics count lookups by layer. What a revocation drops is decided by the gateway's one invalidation
 * listener (see `main.ts`), which calls `invalidate` (or `clear` when messages may have been missed).
 */
export function credentialCaches(deps: { env: Pick<EnvConfig, 'KEYGATE_CACHE_MAX' | 'KEYGATE_CACHE_TTL_MS' | 'KEYGATE_CACHE_NEGATIVE_TTL_MS' | 'KEYGATE_REDIS_PREFIX'>; redis?: RedisClient; metrics: Metrics }) {
  const { env, metrics } = deps
  // The counters' series, found once per (layer, result): every warm request counts an L1 hit, and prom-client's
  // labelled inc() hashes its label object each time (a series is a plain number, folded in when /metrics is read).
  const counters: Record<string, Record<string, { inc(): void }>> = {}
  const options = {
    max: env.KEYGATE_CACHE_MAX,
    ttlMs: env.KEYGATE_CACHE_TTL_MS,
    negativeTtlMs: env.KEYGATE_CACHE_NEGATIVE_TTL_MS,
    shared: deps.redis ? redisSharedCache(deps.redis, env.KEYGATE_REDIS_PREFIX) : undefined,
    onLookup: (layer: string, result: string) => ((counters[layer] ??= {})[result] ??= metrics.cacheLookups.series({ layer, result })).inc(),
  }
  const keyCache = credentialCache<KeyRecord>(options)
  const sessionCache = credentialCache<SessionRecord>(options)
  return {
    keyCache,
    sessionCache,
    /** Drops what `message` names from both caches. */
    invalidate(message: Invalidation): void {
      keyCache.invalidate(message, cacheKeyOf)
      sessionCache.invalidate(message, cacheKeyOf)
    },
    clear(): void {
      keyCache.clear()
      sessionCache.clear()
    },
  }
}
