import type { KeyQuota } from '../core/key-limits.ts'
import type { RateLimitSpec } from '../core/rate-limit.ts'

/** Whether `b` allows more than `a`: a higher rate, or the same rate over a longer window (a larger burst). */
function fasterRate(a: RateLimitSpec, b: RateLimitSpec): boolean {
  const [x, y] = [b.limit * a.window_seconds, a.limit * b.window_seconds]
  return x > y || (x === y && b.limit > a.limit)
}

/**
 * Whether `change` would loosen a key's limits: a rate limit or quota removed, or raised. Undefined fields are
 * left as they are; setting one where there was none tightens.
 */
export function looserLimits(before: { rate_limit: RateLimitSpec | null; quota: KeyQuota | null }, change: { rate_limit?: RateLimitSpec | null; quota?: KeyQuota | null }): boolean {
  if (change.rate_limit !== undefined && before.rate_limit) {
    if (change.rate_limit === null || fasterRate(before.rate_limit, change.rate_limit)) return true
  }
  if (change.quota !== undefined && before.quota) {
    for (const p of ['daily', 'monthly'] as const) {
      const was = before.quota[p]
      if (was === undefined) continue
      const now = change.quota?.[p]
      if (now === undefined || now > was) return true
    }
  }
  return false
}
