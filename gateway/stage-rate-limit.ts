import type { Clock } from '../core/clock.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import type { Bucket, RateCounter, TakeResult } from '../core/rate-counter.ts'
import { policyOf, quotaPeriod, tightest, type RateLimitSpec } from '../core/rate-limit.ts'
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

/**
 * `clientAddress` is asked only when a bucket counts per address. The outcome is synchronous when the counter
 * decides without I/O (in-process, or on a lease it holds), else a promise; undefined when nothing is counted.
 */
export type RateLimitStage = (route: Route, principal: Principal | null, clientAddress: () => string) => RateLimitOutcome | Promise<RateLimitOutcome> | undefined

const NO_HEADERS: RateLimitOutcome = Object.freeze({ ok: true, headers: Object.freeze([]) as readonly string[] })

/**
 * What one route's requests of one subject are counted in. Built once per route and principal (kept as long as
 * both are, in a `WeakMap`: a reloaded route or a changed key is another object, so another plan), or per
 * request when a bucket counts per client address.
 */
interface Plan {
  readonly buckets: readonly Bucket[]
  readonly hasQuota: boolean
  /** `RateLimit-Policy` when bucket i is the one the answer is about: its policy first, then the others'. */
  readonly policyHeaders: readonly string[]
  /** Its quota periods' latest start and earliest end (±Infinity without quotas): a new plan outside them. */
  readonly from: number
  readonly until: number
}

/** A bucket's `RateLimit-Policy` item (draft-07): `limit;w=seconds`. */
function policyItem(b: Bucket): string {
  return b.kind === 'sliding' ? `${b.policy.limit};w=${Math.round(b.policy.windowMs / 1000)}` : `${b.limit};w=${Math.round((b.periodEnd - b.periodStart) / 1000)}`
}

const outside = (plan: Plan, now: number) => now < plan.from || now >= plan.until

function planOf(buckets: Bucket[]): Plan {
  const items = buckets.map(policyItem)
  let from = -Infinity
  let until = Infinity
  for (const b of buckets) {
    if (b.kind !== 'fixed') continue
    from = Math.max(from, b.periodStart)
    until = Math.min(until, b.periodEnd)
  }
  return { buckets, hasQuota: until !== Infinity, policyHeaders: items.map((item, i) => [item, ...items.filter((_, j) => j !== i)].join(', ')), from, until }
}

export function rateLimitStage(deps: RateLimitStageDeps): RateLimitStage {
  const warnEveryMs = deps.warnEveryMs ?? 10_000
  let lastWarn = -Infinity
  let unreported = 0
  const plans = new WeakMap<Route, WeakMap<Principal, Plan>>()
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

  /** The buckets of one request (see the stage's description), in the order the answer's policies list them. */
  function bucketsOf(route: Route, routeLimit: RateLimitSpec | null, principal: Principal | null, clientAddress: () => string, byAddress: boolean): Bucket[] {
    const per = route.rate_limit?.per ?? (route.auth === 'public' ? 'address' : 'key')
    // The hash tag (`{…}`) is the bucket's subject: a user (all of its keys' buckets), or an address. A request's
    // buckets share one tag, so one script on one Redis Cluster node, except a per-address route limit on a key
    // with limits of its own (see `rate-counter-redis.ts`).
    const tag = principal ? `{u:${principal.userId}}` : ''
    const buckets: Bucket[] = []
    if (routeLimit) {
      const subject = byAddress ? `{a:${clientAddress()}}` : per === 'key' && principal!.keyId ? `${tag}:k:${principal!.keyId}` : `${tag}:u`
      buckets.push({ kind: 'sliding', key: `rl:r:${route.name}:${subject}`, policy: policyOf(routeLimit) })
    }
    const limits = principal?.limits
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
    return buckets
  }

  function planFor(route: Route, routeLimit: RateLimitSpec | null, principal: Principal | null, clientAddress: () => string): Plan {
    const byAddress = !principal || (route.rate_limit?.per ?? (route.auth === 'public' ? 'address' : 'key')) === 'address'
    // A per-address bucket names the client address: built for each request.
    if (byAddress && routeLimit) return planOf(bucketsOf(route, routeLimit, principal, clientAddress, true))
    let byPrincipal = plans.get(route)
    if (!byPrincipal) plans.set(route, (byPrincipal = new WeakMap()))
    let plan = byPrincipal.get(principal!)
    if (!plan || (plan.hasQuota && outside(plan, deps.clock.now()))) byPrincipal.set(principal!, (plan = planOf(bucketsOf(route, routeLimit, principal, clientAddress, false))))
    return plan
  }

  function outcomeOf(route: Route, plan: Plan, keyId: string | undefined, taken: TakeResult): RateLimitOutcome {
    const { verdicts } = taken
    const shown = tightest(verdicts)!
    const policy = plan.policyHeaders[verdicts.length === 1 ? 0 : verdicts.indexOf(shown)]!
    const reset = Math.max(1, Math.ceil((shown.allowed ? shown.resetMs : shown.retryAfterMs) / 1000))
    const state = `limit=${shown.limit}, remaining=${shown.remaining}, reset=${reset}`
    if (!taken.allowed) {
      deps.metrics.rateLimited.inc({ route: route.name })
      return { ok: false, code: 'RATE_LIMITED', headers: { 'ratelimit-policy': policy, ratelimit: state, 'retry-after': String(Math.max(1, Math.ceil(shown.retryAfterMs / 1000))) } }
    }
    if (plan.hasQuota && keyId) deps.onQuotaCounted?.(keyId)
    return { ok: true, headers: ['ratelimit-policy', policy, 'ratelimit', state] }
  }

  return (route, principal, clientAddress) => {
    const routeLimit = route.rate_limit ?? deps.defaultLimit
    if (!routeLimit && !principal?.limits) return undefined
    const plan = planFor(route, routeLimit, principal, clientAddress)
    if (plan.buckets.length === 0) return undefined
    const keyId = principal?.keyId
    let taken: TakeResult | Promise<TakeResult>
    try {
      taken = deps.counter.take(plan.buckets)
    } catch (err) {
      return failedOpen(err)
    }
    if (taken instanceof Promise) return taken.then((t) => outcomeOf(route, plan, keyId, t), failedOpen)
    return outcomeOf(route, plan, keyId, taken)
  }
}

/** A flat `[name, value, …]` list as a header record (for the problem answers written after admission). */
export function headerRecord(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < list.length; i += 2) out[list[i]!] = list[i + 1]!
  return out
}
