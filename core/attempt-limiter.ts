import { LRUCache } from 'lru-cache'
import type { Clock } from './clock.ts'

/**
 * Counts failed attempts per key (a username, a client address) in a fixed window. Once `max` failures are
 * counted, every attempt with that key waits until the window ends: the password is not even checked.
 */
export interface AttemptLimiter {
  /** Seconds until `key` may try again; 0 when it may try now. */
  retryAfter(key: string): Promise<number>
  /** Records one failed attempt. */
  fail(key: string): Promise<void>
}

export interface LimiterPolicy { max: number; windowMs: number }

/** Counters in this process only (the embedded default, or a single instance). */
export function memoryAttemptLimiter(policy: LimiterPolicy, clock: Clock, maxKeys = 100_000): AttemptLimiter {
  const counters = new LRUCache<string, { count: number; resetAt: number }>({ max: maxKeys })
  const live = (key: string) => {
    const c = counters.get(key)
    if (c && c.resetAt <= clock.now()) {
      counters.delete(key)
      return undefined
    }
    return c
  }
  return {
    async retryAfter(key) {
      const c = live(key)
      return c && c.count >= policy.max ? Math.ceil((c.resetAt - clock.now()) / 1000) : 0
    },
    async fail(key) {
      const c = live(key)
      if (c) c.count++
      else counters.set(key, { count: 1, resetAt: clock.now() + policy.windowMs })
    },
  }
}

/** The part of an ioredis client this limiter uses. */
export interface RedisCounterClient {
  multi(): { incr(key: string): unknown; pexpire(key: string, ms: number, mode: 'NX'): unknown; exec(): Promise<unknown> }
  get(key: string): Promise<string | null>
  pttl(key: string): Promise<number>
}

/**
 * Counters in Redis, shared by every instance. When Redis fails, `fallback` (in-process) takes over for that
 * call, so an outage neither blocks every login nor lifts the limit entirely.
 */
export function redisAttemptLimiter(policy: LimiterPolicy, redis: RedisCounterClient, prefix: string, fallback: AttemptLimiter, onError?: (err: unknown) => void): AttemptLimiter {
  const k = (key: string) => `${prefix}login:${key}`
  return {
    async retryAfter(key) {
      try {
        const count = Number((await redis.get(k(key))) ?? 0)
        if (count < policy.max) return 0
        const ttl = await redis.pttl(k(key))
        return ttl > 0 ? Math.ceil(ttl / 1000) : 0
      } catch (err) {
        onError?.(err)
        return fallback.retryAfter(key)
      }
    },
    async fail(key) {
      try {
        const m = redis.multi()
        m.incr(k(key))
        m.pexpire(k(key), policy.windowMs, 'NX')
        await m.exec()
      } catch (err) {
        onError?.(err)
        await fallback.fail(key)
      }
    },
  }
}
