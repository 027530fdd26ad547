import { LRUCache } from 'lru-cache'
import type { Clock } from './clock.ts'
import { counted, slide, verdict, type BucketVerdict, type RateLimitPolicy, type WindowState } from './rate-limit.ts'

/**
 * Where a request's buckets are counted: every bucket of one request is decided and counted together,
 * atomically (a request refused by one bucket is counted by none), so the strictest applicable limit wins and a
 * refusal spends nothing.
 *   - sliding: a rate limit (`rate-limit.ts`), keyed by the bucket's name; its window index from the counter's
 *     clock (Redis' own in `rate-counter-redis.ts`, so every instance agrees);
 *   - fixed: a quota, counted in the calendar period named in its key, until `periodEnd`.
 */
export type Bucket =
  | { readonly kind: 'sliding'; readonly key: string; readonly policy: RateLimitPolicy }
  | { readonly kind: 'fixed'; readonly key: string; readonly limit: number; readonly periodStart: number; readonly periodEnd: number }

export interface TakeResult {
  /** Every bucket allowed the request, and it was counted in each. */
  readonly allowed: boolean
  /** One per bucket, in order. */
  readonly verdicts: readonly BucketVerdict[]
  /** The counter's time of the decision, ms since the epoch. */
  readonly now: number
}

export interface RateCounter {
  /**
   * Decides on one request against `buckets` and counts it in all of them when all allow it: synchronously when
   * no I/O is needed (in-process counters, a lease with units left), else a promise. May throw or reject.
   */
  take(buckets: readonly Bucket[]): TakeResult | Promise<TakeResult>
  /** Gives back what it holds and stops its timers (a counter that holds nothing has none). */
  close?(): Promise<void>
}

/** A quota's verdict from its count before this request. */
export function fixedVerdict(b: Extract<Bucket, { kind: 'fixed' }>, count: number, now: number): BucketVerdict {
  const resetMs = Math.max(1, b.periodEnd - now)
  const allowed = count + 1 <= b.limit
  return { allowed, limit: b.limit, windowMs: b.periodEnd - b.periodStart, remaining: allowed ? b.limit - count - 1 : 0, retryAfterMs: allowed ? 0 : resetMs, resetMs }
}

/** Counters in this process (the embedded default, no REDIS_URL): the same decisions, one instance's requests. */
export function memoryRateCounter(clock: Clock, maxBuckets = 200_000): RateCounter {
  const windows = new LRUCache<string, WindowState>({ max: maxBuckets })
  const fixed = new LRUCache<string, { count: number; end: number }>({ max: maxBuckets })
  return {
    // Synchronous from the reads to the writes: no other request runs in between on this event loop.
    take(buckets) {
      const now = clock.now()
      const states: Array<WindowState | number> = []
      const verdicts = buckets.map((b, i) => {
        if (b.kind === 'sliding') {
          const s = slide(windows.get(b.key), b.policy, now)
          states[i] = s
          return verdict(b.policy, s, now)
        }
        const f = fixed.get(b.key)
        const count = f && f.end > now ? f.count : 0
        states[i] = count
        return fixedVerdict(b, count, now)
      })
      const allowed = verdicts.every((v) => v.allowed)
      if (allowed) {
        buckets.forEach((b, i) => {
          if (b.kind === 'sliding') {
            windows.set(b.key, counted(states[i] as WindowState, b.policy, now))
          } else {
            fixed.set(b.key, { count: (states[i] as number) + 1, end: b.periodEnd })
          }
        })
      }
      return { allowed, verdicts, now }
    },
  }
}
