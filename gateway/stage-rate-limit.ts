import type { Clock } from '../core/clock.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import type { Bucket, RateCounter } from '../core/rate-counter.ts'
import { policyOf, quotaPeriod, tightest, type BucketVerdict, type RateLimitSpec } from '../core/rate-limit.ts'
import type { Principal } from './authenticator.ts'
import type { Route } from './router.ts'

/**
 * Stage 5 of admission, after authentication (an unknown or invalid key is refused before anything is counted,
 * so it cannot spend a valid key's budget). The buckets a request is counted in, all decided together:
 *   - the route's `rate_limit` (or KEYGATE_RATE_LIMIT_DEFAULT on a route without one), per key (a login token:
 *     per user), per user or per client address; an anonymous request on an optional route counts per address;
 *   - an API key's own `rate_limit`, per key and route: counted besides the route's, it can only slow the key;
 *   - an API key's quotas, per UTC day and calendar month, across routes.
 * The strictest wins: a request any bucket refuses is 429 RATE_LIMITED and counted in none. Answers of a limited
 * route carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-07) about the bucket with
 * the fewest requests left; a refusal carries `Retry-After` too.
 *
 * A counter that fails (Redis away) lets the request through uncounted: a metric counts it, and one warning line
 * per interval says how many passed so.
 */
export interface RateLimitStageDeps {
  counter: RateCounter
  /** KEYGATE_RATE_LIMIT_DEFAULT. */
  defaultLimit: RateLimitSpec | null
  clock: Clock
  metrics: Pick<Metrics, 'rateLimited' | 'rateLimitFailOpen'>
  logger: Pick<Logger, 'warn'>
  /** Told about each request counted in a key's quota (for the usage summary in PostgreSQL). */
  onQuotaCounted?(keyId: string): void
  /** At most one warning line about failing open per this interval. */
  warnEveryMs?: number
}

export type RateLimitOutcome =
  | { readonly ok: true; readonly headers: readonly string[] }
  | { readonly ok: false; readonly code: 'RATE_LIMITED'; readonly headers: Readonly<Record<string, string>> }

/** `clientAddress` is asked only when a bucket counts per address. */
export type RateLimitStage = (route: Route, principal: Principal | null, clientAddress: () => string) => Promise<RateLimitOutcome> | undefined

const NO_HEADERS: RateLimitOutcome = Object.freeze({ ok: true, headers: Object.freeze([]) as readonly string[] })

/** `RateLimit-Policy` and `RateLimit` (draft-07): the tightest bucket first, then the others' policies. */
function headerValues(verdicts: readonly BucketVerdict[], shown: BucketVerdict): [string, string] {
  const policy = (v: BucketVerdict) => `${v.limit};w=${Math.round(v.windowMs / 1000)}`
  const others = verdicts.filter((v) => v !== shown).map(policy)
  const reset = Math.max(1, Math.ceil((shown.allowed ? shown.resetMs : shown.retryAfterMs) / 1000))
  return [[policy(shown), ...others].join(', '), `limit=${shown.limit}, remaining=${shown.remaining}, reset=${reset}`]
}

export function rateLimitStage(deps: RateLimitStageDeps): RateLimitStage {
  const warnEveryMs = deps.warnEveryMs ?? 10_000
  let lastWarn = -Infinity
  let unreported = 0
  function failedOpen(err: unknown): RateLimitOutcome {
    deps.metrics.rateLimitFailOpen.inc()
    unreported++
    const now = deps.clock.now()
    if (now - lastWarn >= warnEveryMs) {
      deps.logger.warn('rate limiter unavailable: requests pass uncounted', { error: String((err as Error)?.message ?? err), failed_open: unreported })
      lastWarn = now
      unreported = 0
    }
    return NO_HEADERS
  }

  return (route, principal, clientAddress) => {
    const routeLimit = route.rate_limit ?? deps.defaultLimit
    const limits = principal?.limits
    if (!routeLimit && !limits) return undefined
    const per = route.rate_limit?.per ?? (route.auth === 'public' ? 'address' : 'key')
    const byAddress = !principal || per === 'address'
    // The hash tag (`{…}`) is the bucket's subject: a user (all of its keys' buckets), or an address. A request's
    // buckets share one tag, so one script on one Redis Cluster node, except a per-address route limit on a key
    // with limits of its own (see `rate-counter-redis.ts`).
    const tag = principal ? `{u:${principal.userId}}` : ''
    const buckets: Bucket[] = []
    if (routeLimit) {
      const subject = byAddress ? `{a:${clientAddress()}}` : per === 'key' && principal.keyId ? `${tag}:k:${principal.keyId}` : `${tag}:u`
      buckets.push({ kind: 'sliding', key: `rl:r:${route.name}:${subject}`, policy: policyOf(routeLimit) })
    }
    const keyId = principal?.keyId
    if (limits && keyId) {
      if (limits.rateLimit) buckets.push({ kind: 'sliding', key: `rl:${tag}:k:${keyId}:r:${route.name}`, policy: policyOf(limits.rateLimit) })
      const now = deps.clock.now()
      for (const [period, limit] of [['day', limits.quota?.daily], ['month', limits.quota?.monthly]] as const) {
        if (limit === undefined) continue
        const p = quotaPeriod(period, now)
        buckets.push({ kind: 'fixed', key: `quota:${tag}:k:${keyId}:${p.id}`, limit, periodStart: p.start, periodEnd: p.end })
      }
    }
    if (buckets.length === 0) return undefined
    const hasQuota = buckets.some((b) => b.kind === 'fixed')
    return deps.counter.take(buckets).then((taken): RateLimitOutcome => {
      const shown = tightest(taken.verdicts)!
      const [policy, state] = headerValues(taken.verdicts, shown)
      if (!taken.allowed) {
        deps.metrics.rateLimited.inc({ route: route.name })
        return { ok: false, code: 'RATE_LIMITED', headers: { 'ratelimit-policy': policy, ratelimit: state, 'retry-after': String(Math.max(1, Math.ceil(shown.retryAfterMs / 1000))) } }
      }
      if (hasQuota && keyId) deps.onQuotaCounted?.(keyId)
      return { ok: true, headers: ['ratelimit-policy', policy, 'ratelimit', state] }
    }, failedOpen)
  }
}

/** A flat `[name, value, …]` list as a header record (for the problem answers written after admission). */
export function headerRecord(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < list.length; i += 2) out[list[i]!] = list[i + 1]!
  return out
}
