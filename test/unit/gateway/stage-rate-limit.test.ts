import t from 'tap'
import { manualClock } from '../../../core/clock.ts'
import { createMetrics } from '../../../core/metrics.ts'
import { memoryRateCounter, type Bucket, type RateCounter } from '../../../core/rate-counter.ts'
import type { Principal } from '../../../gateway/authenticator.ts'
import { routeWithDefaults } from '../../../gateway/router.ts'
import { rateLimitStage, type RateLimitOutcome, type RateLimitStageDeps } from '../../../gateway/stage-rate-limit.ts'

const principal = (over: Partial<Principal> = {}): Principal => ({
  userId: 'u1', username: 'alice', auth: 'api_key', keyId: 'k1', scopes: ['*'], credentialId: 'key:k1', revocationKey: 'k:h1', ...over,
})

function setup(over: Partial<RateLimitStageDeps> = {}) {
  const clock = manualClock(Date.UTC(2026, 0, 1))
  const metrics = createMetrics({ defaultMetrics: false })
  const warnings: Array<{ msg: string; fields: Record<string, unknown> | undefined }> = []
  const counted: string[] = []
  const stage = rateLimitStage({
    counter: memoryRateCounter(clock), defaultLimit: null, clock, metrics,
    logger: { warn: (msg, fields) => void warnings.push({ msg, fields }) },
    onQuotaCounted: (id) => void counted.push(id),
    ...over,
  })
  return { clock, metrics, warnings, counted, stage }
}

async function run(outcome: RateLimitOutcome | Promise<RateLimitOutcome> | undefined, times = 1): Promise<RateLimitOutcome[]> {
  const out: RateLimitOutcome[] = []
  for (let i = 0; i < times; i++) out.push((await outcome)!)
  return out
}

/** Asks `n` times; the codes (`ok` when admitted). */
async function codes(ask: () => RateLimitOutcome | Promise<RateLimitOutcome> | undefined, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const o = await ask()
    out.push(o === undefined ? 'none' : o.ok ? 'ok' : o.code)
  }
  return out
}

t.test('a route without a limit, and no default, costs nothing: no promise, no headers', async (t) => {
  const { stage } = setup()
  t.equal(stage(routeWithDefaults({ name: 'r', prefix: '/', upstream: 'u' }), principal(), () => { throw new Error('the address was asked') }), undefined)
})

t.test('a route limit counts per key by default: another key of the same user has its own budget', async (t) => {
  const { stage, metrics } = setup()
  const route = routeWithDefaults({ name: 'docs', prefix: '/docs', upstream: 'u', rate_limit: { limit: 2, window_seconds: 60 } })
  const noAddress = () => { throw new Error('the address was asked') }
  t.same(await codes(() => stage(route, principal(), noAddress), 3), ['ok', 'ok', 'RATE_LIMITED'], 'the client address is not even looked at')
  t.same(await codes(() => stage(route, principal({ keyId: 'k2' }), () => 'a'), 2), ['ok', 'ok'])
  t.same(await codes(() => stage(route, principal({ keyId: undefined, auth: 'jwt' }), () => 'a'), 3), ['ok', 'ok', 'RATE_LIMITED'], 'a login token counts per user')
  t.match(await metrics.registry.getSingleMetricAsString('keygate_rate_limited_total'), /keygate_rate_limited_total\{route="docs"\} 2/)
})

t.test('per user: every key of the user shares one budget; per address: every client behind one address', async (t) => {
  const { stage } = setup()
  const perUser = routeWithDefaults({ name: 'u', prefix: '/u', upstream: 'u', rate_limit: { limit: 2, window_seconds: 60, per: 'user' } })
  t.same(await codes(() => stage(perUser, principal(), () => 'a'), 1), ['ok'])
  t.same(await codes(() => stage(perUser, principal({ keyId: 'k2' }), () => 'b'), 2), ['ok', 'RATE_LIMITED'])
  const perAddress = routeWithDefaults({ name: 'p', prefix: '/p', upstream: 'u', auth: 'public', rate_limit: { limit: 1, window_seconds: 60 } })
  t.same(await codes(() => stage(perAddress, null, () => '10.0.0.1'), 2), ['ok', 'RATE_LIMITED'], 'public routes count per address by default')
  t.same(await codes(() => stage(perAddress, null, () => '10.0.0.2'), 1), ['ok'])
  const behindOneAddress = routeWithDefaults({ name: 'nat', prefix: '/n', upstream: 'u', rate_limit: { limit: 2, window_seconds: 60, per: 'address' } })
  t.same([
    ...await codes(() => stage(behindOneAddress, principal(), () => '10.0.0.9'), 1),
    ...await codes(() => stage(behindOneAddress, principal({ userId: 'u2', keyId: 'k9' }), () => '10.0.0.9'), 2),
  ], ['ok', 'ok', 'RATE_LIMITED'], 'per address on an authenticated route: every user behind the address shares it')
})

t.test('an anonymous request on an optional route counts per address', async (t) => {
  const { stage } = setup()
  const route = routeWithDefaults({ name: 'o', prefix: '/o', upstream: 'u', auth: 'optional', rate_limit: { limit: 1, window_seconds: 60 } })
  t.same(await codes(() => stage(route, null, () => '10.0.0.1'), 2), ['ok', 'RATE_LIMITED'])
  t.same(await codes(() => stage(route, principal(), () => '10.0.0.1'), 1), ['ok'], 'a key has its own budget')
})

t.test('KEYGATE_RATE_LIMIT_DEFAULT applies to routes without their own limit, and a route limit replaces it', async (t) => {
  const { stage } = setup({ defaultLimit: { limit: 1, window_seconds: 60 } })
  const plain = routeWithDefaults({ name: 'plain', prefix: '/a', upstream: 'u' })
  const own = routeWithDefaults({ name: 'own', prefix: '/b', upstream: 'u', rate_limit: { limit: 3, window_seconds: 60 } })
  t.same(await codes(() => stage(plain, principal(), () => 'a'), 2), ['ok', 'RATE_LIMITED'])
  t.same(await codes(() => stage(own, principal(), () => 'a'), 4), ['ok', 'ok', 'ok', 'RATE_LIMITED'])
})

t.test('a key\'s own limit and the route\'s both count: the strictest wins, a larger own limit raises nothing', async (t) => {
  const { stage } = setup()
  const route = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 3, window_seconds: 60 } })
  const slow = principal({ limits: { rateLimit: { limit: 1, window_seconds: 60 }, quota: null } })
  t.same(await codes(() => stage(route, slow, () => 'a'), 2), ['ok', 'RATE_LIMITED'])
  const greedy = principal({ keyId: 'k2', limits: { rateLimit: { limit: 1000, window_seconds: 1 }, quota: null } })
  t.same(await codes(() => stage(route, greedy, () => 'a'), 4), ['ok', 'ok', 'ok', 'RATE_LIMITED'])
  const anywhere = routeWithDefaults({ name: 'free', prefix: '/f', upstream: 'u' })
  t.same(await codes(() => stage(anywhere, slow, () => 'a'), 2), ['ok', 'RATE_LIMITED'], 'a key\'s own limit holds on a route without one')
})

t.test('a key\'s daily quota counts across routes, and each counted request is reported for the usage summary', async (t) => {
  const { stage, counted } = setup()
  const key = principal({ limits: { rateLimit: null, quota: { daily: 2 } } })
  const a = routeWithDefaults({ name: 'a', prefix: '/a', upstream: 'u' })
  const b = routeWithDefaults({ name: 'b', prefix: '/b', upstream: 'u' })
  t.same([...await codes(() => stage(a, key, () => 'x'), 1), ...await codes(() => stage(b, key, () => 'x'), 2)], ['ok', 'ok', 'RATE_LIMITED'])
  t.same(counted, ['k1', 'k1'])
  const [refused] = await run(stage(a, key, () => 'x'))
  t.match(refused, { ok: false, headers: { 'ratelimit-policy': '2;w=86400', ratelimit: /^limit=2, remaining=0, reset=\d+$/ } })
})

t.test('answers carry RateLimit-Policy and RateLimit; a refusal adds Retry-After', async (t) => {
  const { stage, clock } = setup()
  const route = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 2, window_seconds: 60 } })
  t.same(await stage(route, principal(), () => 'a'), { ok: true, headers: ['ratelimit-policy', '2;w=60', 'ratelimit', 'limit=2, remaining=1, reset=66'] })
  clock.advance(10_000)
  t.same(await stage(route, principal(), () => 'a'), { ok: true, headers: ['ratelimit-policy', '2;w=60', 'ratelimit', 'limit=2, remaining=0, reset=56'] })
  t.same(await stage(route, principal(), () => 'a'), { ok: false, code: 'RATE_LIMITED', headers: { 'ratelimit-policy': '2;w=60', ratelimit: 'limit=2, remaining=0, reset=56', 'retry-after': '56' } })
})

t.test('a failing counter lets requests through uncounted, counted by a metric, with one warning per interval', async (t) => {
  const failing: RateCounter = { take: async (_b: readonly Bucket[]) => { throw new Error('Connection is closed.') } }
  const { stage, metrics, warnings, clock } = setup({ counter: failing })
  const route = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 1, window_seconds: 60 } })
  t.same(await codes(() => stage(route, principal(), () => 'a'), 5), ['ok', 'ok', 'ok', 'ok', 'ok'])
  t.match(await metrics.registry.getSingleMetricAsString('keygate_rate_limit_fail_open_total'), /keygate_rate_limit_fail_open_total 5/)
  t.equal(warnings.length, 1, 'one line, not one per request')
  t.match(warnings[0], { msg: /rate limiter unavailable/, fields: { error: 'Connection is closed.', failed_open: 1 } })
  clock.advance(10_000)
  await stage(route, principal(), () => 'a')
  t.equal(warnings.length, 2)
  t.match(warnings[1]!.fields, { failed_open: 5 }, 'the next line says how many passed since the last')
})

t.test('counted in-process, the outcome is synchronous: no promise on the request\'s path', async (t) => {
  const { stage } = setup()
  const route = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 2, window_seconds: 60 } })
  const outcome = stage(route, principal(), () => 'a')
  t.notOk(outcome instanceof Promise)
  t.same(outcome, { ok: true, headers: ['ratelimit-policy', '2;w=60', 'ratelimit', 'limit=2, remaining=1, reset=66'] })
})

t.test('a key\'s buckets are worked out once, yet a quota moves on to the next day at midnight', async (t) => {
  const { stage, clock } = setup()
  const key = principal({ limits: { rateLimit: { limit: 100, window_seconds: 60 }, quota: { daily: 2, monthly: 5 } } })
  const route = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 3, window_seconds: 60 } })
  t.same(await codes(() => stage(route, key, () => 'a'), 3), ['ok', 'ok', 'RATE_LIMITED'])
  const [refused] = await run(stage(route, key, () => 'a'))
  t.match(refused, { ok: false, headers: { 'ratelimit-policy': '2;w=86400, 3;w=60, 100;w=60, 5;w=2678400' } }, 'the tightest bucket\'s policy first, then the others in order')
  clock.advance(86_400_000)
  t.same(await codes(() => stage(route, key, () => 'a'), 3), ['ok', 'ok', 'RATE_LIMITED'], 'a new day, a new daily quota')
  clock.advance(86_400_000)
  t.same(await codes(() => stage(route, key, () => 'a'), 2), ['ok', 'RATE_LIMITED'], 'the month\'s 5 spent')
  const [month] = await run(stage(route, key, () => 'a'))
  t.match(month, { ok: false, headers: { 'ratelimit-policy': '5;w=2678400, 3;w=60, 100;w=60, 2;w=86400' } })
})

t.test('a reloaded route, or a key whose limits changed, is counted under its new limits at once', async (t) => {
  const { stage } = setup()
  const before = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 1, window_seconds: 60 } })
  t.same(await codes(() => stage(before, principal(), () => 'a'), 2), ['ok', 'RATE_LIMITED'])
  const reloaded = routeWithDefaults({ name: 'r', prefix: '/r', upstream: 'u', rate_limit: { limit: 3, window_seconds: 60 } })
  t.same(await codes(() => stage(reloaded, principal(), () => 'a'), 3), ['ok', 'ok', 'RATE_LIMITED'], 'the same bucket, the new limit')
  const open = routeWithDefaults({ name: 'o', prefix: '/o', upstream: 'u' })
  const key = principal()
  t.equal(stage(open, key, () => 'a'), undefined)
  const limited = principal({ limits: { rateLimit: { limit: 1, window_seconds: 60 }, quota: null } })
  t.same(await codes(() => stage(open, limited, () => 'a'), 2), ['ok', 'RATE_LIMITED'], 'the key\'s record changed: a new principal, a new plan')
})
