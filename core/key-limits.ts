import type { RateLimitSpec } from './rate-limit.ts'

/**
 * An API key's own limits, stored with the key (`api_keys.rate_limit`, `api_keys.quota`): a rate limit counted
 * per key and route besides the route's own (so it can only make the key slower), and request quotas per UTC day
 * and calendar month, counted per key across every route.
 */
export interface KeyQuota {
  daily?: number
  monthly?: number
}

export interface KeyLimits {
  readonly rateLimit: RateLimitSpec | null
  readonly quota: KeyQuota | null
}

export const QUOTA_MAX = 1_000_000_000

/** The limits of a stored key, or undefined when it has none (the common case: nothing to count for it). */
export function keyLimitsOf(rateLimit: RateLimitSpec | null, quota: KeyQuota | null): KeyLimits | undefined {
  const q = quota && (quota.daily !== undefined || quota.monthly !== undefined) ? quota : null
  return rateLimit || q ? { rateLimit, quota: q } : undefined
}
