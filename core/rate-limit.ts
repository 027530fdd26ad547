/**
 * The rate limit's counting, as pure logic: a sliding window over two fixed windows (the current one and the
 * one before it, weighted by how much of it still lies within the last `windowMs`). A request fits when
 *
 *     previous × (windowMs − elapsed) / windowMs + current + 1 ≤ limit
 *
 * so a client that spent its budget at the end of one window does not get a second one at the start of the
 * next (the boundary burst of a fixed window), while each bucket costs two counters, not a log of requests.
 * The comparison is made in whole numbers (both sides × windowMs) so that Redis' Lua (`rate-limit-redis.ts`)
 * and this file decide alike to the last request.
 */
export interface RateLimitPolicy {
  /** Requests allowed in any `windowMs`. */
  readonly limit: number
  readonly windowMs: number
}

/** One bucket's stored state: the fixed window it counts in (`floor(t / windowMs)`) and the two counters. */
export interface WindowState {
  window: number
  current: number
  previous: number
}

/** What one bucket says about one request, for the decision and the answer's headers. */
export interface BucketVerdict {
  readonly allowed: boolean
  readonly limit: number
  readonly windowMs: number
  /** Requests left after this one (0 when refused). */
  readonly remaining: number
  /** Milliseconds until one more request fits (0 when allowed). */
  readonly retryAfterMs: number
  /** Milliseconds until the current fixed window ends (the `reset` of the headers when allowed). */
  readonly resetMs: number
}

/** The counters as seen at `now`: the stored window moved forward (a window or more later, its counts age). */
export function slide(state: WindowState | undefined, policy: RateLimitPolicy, now: number): WindowState {
  const window = Math.floor(now / policy.windowMs)
  if (!state || state.window < window - 1) return { window, current: 0, previous: 0 }
  if (state.window === window - 1) return { window, current: 0, previous: state.current }
  // A state from the future (a clock stepped back) is read as the current window.
  return { window, current: state.current, previous: state.previous }
}

/** Whether one more request fits, in whole numbers (see the file's comment). */
export function fits(policy: RateLimitPolicy, s: WindowState, now: number): boolean {
  const w = policy.windowMs
  const elapsed = now - s.window * w
  return s.previous * (w - elapsed) + (s.current + 1) * w <= policy.limit * w
}

/**
 * Decides one request against one bucket whose counters (already slid to `now`) are `s`, before this request
 * is counted. Does not count it: the caller increments `current` when every bucket of the request allowed it.
 */
export function verdict(policy: RateLimitPolicy, s: WindowState, now: number): BucketVerdict {
  const w = policy.windowMs
  const elapsed = now - s.window * w
  const resetMs = w - elapsed
  if (fits(policy, s, now)) {
    // Left after this one: what still fits at this instant.
    const used = (s.previous * (w - elapsed)) / w + s.current + 1
    return { allowed: true, limit: policy.limit, windowMs: w, remaining: Math.max(0, Math.floor(policy.limit - used)), retryAfterMs: 0, resetMs }
  }
  return { allowed: false, limit: policy.limit, windowMs: w, remaining: 0, retryAfterMs: retryAfter(policy, s, elapsed), resetMs }
}

/** Milliseconds from now until one more request fits, with `s` unchanged meanwhile. */
function retryAfter(policy: RateLimitPolicy, s: WindowState, elapsed: number): number {
  const w = policy.windowMs
  const { limit } = policy
  // Within this window: the previous window's weight must shrink enough.
  if (s.previous > 0 && s.current + 1 <= limit) {
    const t = Math.ceil(w - elapsed - ((limit - s.current - 1) * w) / s.previous)
    if (elapsed + Math.max(0, t) < w) return Math.max(1, t)
  }
  // In the next window, this window's count becomes the previous one and ages from there.
  const into = s.current > 0 ? Math.max(0, Math.ceil(w - ((limit - 1) * w) / s.current)) : 0
  return Math.max(1, w - elapsed + into)
}

/** Of several buckets' verdicts on one request, the one the client is told about: a refusal, else the fewest left. */
export function tightest(verdicts: readonly BucketVerdict[]): BucketVerdict | undefined {
  let pick: BucketVerdict | undefined
  for (const v of verdicts) {
    if (!pick) pick = v
    else if (!v.allowed && (pick.allowed || v.retryAfterMs > pick.retryAfterMs)) pick = v
    else if (v.allowed && pick.allowed && (v.remaining < pick.remaining || (v.remaining === pick.remaining && v.limit < pick.limit))) pick = v
  }
  return pick
}

/**
 * A quota: requests per calendar period (UTC day or month), a fixed window counted from its start.
 */
export type QuotaPeriod = 'day' | 'month'

/** The period containing `now`: its id (`2026-12-05`, `2026-12`) and its end, ms since the epoch. */
export function quotaPeriod(period: QuotaPeriod, now: number): { id: string; start: number; end: number } {
  const d = new Date(now)
  const y = d.getUTCFullYear()
  const m = d.getUTCMonth()
  if (period === 'day') {
    const start = Date.UTC(y, m, d.getUTCDate())
    return { id: new Date(start).toISOString().slice(0, 10), start, end: start + 86_400_000 }
  }
  const start = Date.UTC(y, m, 1)
  return { id: new Date(start).toISOString().slice(0, 7), start, end: Date.UTC(y, m + 1, 1) }
}

/** The `rate_limit` shape of the route file, the admin API and the store. */
export interface RateLimitSpec {
  limit: number
  window_seconds: number
}

export const RATE_LIMIT_MAX = 1_000_000
export const RATE_LIMIT_WINDOW_MAX_SECONDS = 86_400

export function policyOf(spec: RateLimitSpec): RateLimitPolicy {
  return { limit: spec.limit, windowMs: spec.window_seconds * 1000 }
}

/**
 * Parses `KEYGATE_RATE_LIMIT_DEFAULT`: `off`, or `LIMIT/WINDOW` with the window as seconds (`60`, `60s`) or a
 * unit (`s`, `min`, `hour`, `day`): `100/min`, `1000/3600s`. Undefined when the text is none of these.
 */
export function parseRateLimit(text: string): RateLimitSpec | null | undefined {
  const v = text.trim().toLowerCase()
  if (v === '' || v === 'off') return null
  const m = /^(\d{1,7})\s*\/\s*(?:(\d{1,6})\s*s?|(s|sec|second|min|minute|h|hour|d|day))$/.exec(v)
  if (!m) return undefined
  const limit = Number(m[1])
  const units: Record<string, number> = { s: 1, sec: 1, second: 1, min: 60, minute: 60, h: 3600, hour: 3600, d: 86_400, day: 86_400 }
  const window = m[2] !== undefined ? Number(m[2]) : units[m[3]!]!
  if (limit < 1 || limit > RATE_LIMIT_MAX || window < 1 || window > RATE_LIMIT_WINDOW_MAX_SECONDS) return undefined
  return { limit, window_seconds: window }
}
