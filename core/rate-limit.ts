/**
 * The rate limit's counting, as pure logic: a sliding window kept as `SUB_WINDOWS` + 1 counters, one per slice
 * of `windowMs / SUB_WINDOWS` (a slice is numbered `floor(t / slice)`). A request at `t` counts every request
 * of the slices that reach back at least `windowMs` (the current slice and the SUB_WINDOWS before it), and fits
 * when that count plus one is within the limit. So:
 *   - never more than `limit` in any `windowMs` (every request of the last `windowMs` lies in a counted slice):
 *     a budget spent at the end of one minute is not given again at the start of the next;
 *   - at least `limit` in any `windowMs` + one slice (the window moves on by slices, not by requests);
 *   - each bucket costs at most SUB_WINDOWS + 1 counters, not a log of its requests.
 * Redis' Lua (`rate-counter-redis.ts`) decides with the same arithmetic.
 */
export interface RateLimitPolicy {
  /** Requests allowed in any `windowMs`. */
  readonly limit: number
  readonly windowMs: number
}

/** Slices per window: the limit is exact, the window's end moves on in steps of a tenth of it. */
export const SUB_WINDOWS = 10

/** One bucket's counts by slice number, oldest first; only slices still counted. */
export type WindowState = ReadonlyArray<readonly [slice: number, count: number]>

/** What one bucket says about one request, for the decision and the answer's headers. */
export interface BucketVerdict {
  readonly allowed: boolean
  readonly limit: number
  readonly windowMs: number
  /** Requests left after this one (0 when refused). */
  readonly remaining: number
  /** Milliseconds until one more request fits (0 when allowed). */
  readonly retryAfterMs: number
  /** Milliseconds until the count next goes down (its oldest slice leaves the window). */
  readonly resetMs: number
}

export function sliceMs(policy: RateLimitPolicy): number {
  return policy.windowMs / SUB_WINDOWS
}

/** The slices of `state` still counted at `now`: the current one and the SUB_WINDOWS before it. */
export function slide(state: WindowState | undefined, policy: RateLimitPolicy, now: number): WindowState {
  if (!state) return []
  const oldest = Math.floor(now / sliceMs(policy)) - SUB_WINDOWS
  return state.every(([slice]) => slice >= oldest) ? state : state.filter(([slice]) => slice >= oldest)
}

/** `s` with one more request counted in the slice of `now`. */
export function counted(s: WindowState, policy: RateLimitPolicy, now: number): WindowState {
  const slice = Math.floor(now / sliceMs(policy))
  const last = s[s.length - 1]
  if (last && last[0] === slice) return [...s.slice(0, -1), [slice, last[1] + 1]]
  return [...s, [slice, 1]]
}

const total = (s: WindowState) => s.reduce((n, [, c]) => n + c, 0)

/**
 * The verdict allowing one request when `used` requests are counted in the window (`used + 1 <= limit`, the
 * caller checked), the oldest of them in slice `oldest` (undefined when none is).
 */
export function allowedVerdict(policy: RateLimitPolicy, used: number, oldest: number | undefined, now: number): BucketVerdict {
  const slice = sliceMs(policy)
  // When the count next goes down: the oldest slice counted leaves (this request's own, when it is the first);
  // slice m stops counting when the current slice is m + SUB_WINDOWS + 1.
  const resetMs = Math.max(1, Math.ceil(((oldest ?? Math.floor(now / slice)) + SUB_WINDOWS + 1) * slice - now))
  return { allowed: true, limit: policy.limit, windowMs: policy.windowMs, remaining: policy.limit - used - 1, retryAfterMs: 0, resetMs }
}

/** Whether one more request fits. */
export function fits(policy: RateLimitPolicy, s: WindowState): boolean {
  return total(s) + 1 <= policy.limit
}

/**
 * Decides one request against one bucket whose counts (already slid to `now`) are `s`, before this request is
 * counted. Does not count it: the caller counts it when every bucket of the request allowed it.
 */
export function verdict(policy: RateLimitPolicy, s: WindowState, now: number): BucketVerdict {
  const slice = sliceMs(policy)
  const current = Math.floor(now / slice)
  // Slice m stops counting when the current slice is m + SUB_WINDOWS + 1.
  const leaves = (m: number) => Math.max(1, Math.ceil((m + SUB_WINDOWS + 1) * slice - now))
  const used = total(s)
  if (used + 1 <= policy.limit) return allowedVerdict(policy, used, s.length ? s[0]![0] : undefined, now)
  // When the count next goes down: the oldest slice counted leaves (this request's own, when it is the first).
  const resetMs = leaves(s.length ? s[0]![0] : current)
  // Until enough of the oldest slices have left that one more fits (the current slice's own count included).
  let left = used
  let retryAfterMs = leaves(current)
  for (const [m, c] of s) {
    left -= c
    if (left + 1 <= policy.limit) {
      retryAfterMs = leaves(m)
      break
    }
  }
  return { allowed: false, limit: policy.limit, windowMs: policy.windowMs, remaining: 0, retryAfterMs, resetMs }
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
