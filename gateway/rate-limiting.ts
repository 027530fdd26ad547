import type { EnvConfig } from '../config/schema.ts'
import { TUNABLES } from '../config/tunables.ts'
import type { Cleanups } from '../core/cleanups.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { quotaUsageRecorder } from '../core/quota-usage-recorder.ts'
import { memoryRateCounter } from '../core/rate-counter.ts'
import { parseRateLimit } from '../core/rate-limit.ts'
import { redisRateCounter, type RedisScriptClient } from '../core/rate-counter-redis.ts'
import { rateLimitStage, type RateLimitStage } from './stage-rate-limit.ts'

/**
 * The rate limit stage as the composition root builds it: counted in Redis (one budget for every instance, spent
 * from leases: `rate-lease.ts`) when REDIS_URL is set, in-process otherwise; quota counts summed into PostgreSQL
 * for the listing.
 */
export function rateLimiting(deps: { env: Pick<EnvConfig, 'KEYGATE_RATE_LIMIT_DEFAULT' | 'KEYGATE_REDIS_PREFIX'>; db: Db; redis?: RedisScriptClient; clock: Clock; metrics: Metrics; logger: Logger; cleanups: Cleanups }): RateLimitStage {
  const { env, metrics, clock } = deps
  const counter = deps.redis
    ? redisRateCounter(deps.redis, { prefix: env.KEYGATE_REDIS_PREFIX, clock, observe: (s) => metrics.rateLimitRedisDuration.observe(s) })
    : memoryRateCounter(clock)
  // Before the Redis connection closes (cleanups run newest first): the leases' unspent units go back.
  if (counter.close) deps.cleanups.unshift(() => counter.close!())
  const usage = quotaUsageRecorder({ db: deps.db, clock, intervalMs: TUNABLES.keys.quotaFlushMs, onError: (err) => deps.logger.warn('quota usage flush failed', { error: String(err) }) })
  deps.cleanups.unshift(() => usage.close())
  return rateLimitStage({ counter, defaultLimit: parseRateLimit(env.KEYGATE_RATE_LIMIT_DEFAULT) ?? null, clock, metrics, logger: deps.logger, onQuotaCounted: (keyId) => usage.record(keyId) })
}
