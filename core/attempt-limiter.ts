import { LRUCache } from 'lru-cache'
import type { Clock } from './clock.ts'

/**
 * Counts failed attempts per key (a username, a client address) in a fixed window. Once `max` failures are
 * counted, every attempt with that key waits until the window ends: the password is not even checked.
 *
 * An attempt is reserved (counted) atomically before the password is checked, and released when it succeeded:
 * checking first and counting after would let a burst of concurrent guesses all pass the check before the first
 * one is counted.
 */
export interface AttemptLimiter {
  /** Seconds until `key` may try again; 0 when it may try now. */
  retryAfter(key: string): Promise<number>
  /** Records one failed attempt. */
  fail(key: string): Promise<void>
  /**
   * Counts one attempt now, atomically; resolves 0 when it is within the limit (go on and check the password),
   * else the seconds until the window ends (refuse without checking).
   */
  reserve(key: string): Promise<number>
  /** Gives back a reserved attempt that succeeded: only failures stay counted. */
  release(key: string): Promise<void>
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
    // Synchronous from the read to the write: no other attempt can run in between on this event loop.
    async reserve(key) {
      let c = live(key)
      if (!c) counters.set(key, (c = { count: 0, resetAt: clock.now() + policy.windowMs }))
      if (c.count >= policy.max) return Math.max(1, Math.ceil((c.resetAt - clock.now()) / 1000))
      c.count++
      return 0
    },
    async release(key) {
      const c = live(key)
      if (c && c.count > 0) c.count--
    },
  }
}

/** The part of an ioredis client this limiter uses. */
export interface RedisCounterClient {
  multi(): { incr(key: string): unknown; pexpire(key: string, ms: number, mode: 'NX'): unknown; exec(): Promise<unknown> }
  get(key: string): Promise<string | null>
  pttl(key: string): Promise<number>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

// One round trip, atomic in Redis: count the attempt unless the limit is reached; the answer is 0 (go on) or the
// milliseconds left in the window. A refused attempt is not counted, so the window is not stretched by refusals.
const RESERVE = `local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then local ttl = redis.call('PTTL', KEYS[1]) if ttl < 1 then ttl = 1 end return ttl end
redis.call('INCR', KEYS[1])
if n == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`
// Never below zero, and never a counter without its expiry (a key that expired meanwhile stays absent).
const RELEASE = `if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end return 0`

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
    async reserve(key) {
      try {
        const ms = Number(await redis.eval(RESERVE, 1, k(key), policy.max, policy.windowMs))
        return ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 0
      } catch (err) {
        onError?.(err)
        return fallback.reserve(key)
      }
    },
    async release(key) {
      try {
        await redis.eval(RELEASE, 1, k(key))
      } catch (err) {
        onError?.(err)
        await fallback.release(key)
      }
    },
  }
}
