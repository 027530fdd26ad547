import t from 'tap'
import { manualClock } from '../../../core/clock.ts'
import { memoryRateCounter, type Bucket } from '../../../core/rate-counter.ts'
import { parseRateLimit, quotaPeriod, slide, tightest, verdict } from '../../../core/rate-limit.ts'

const MINUTE = 60_000
const perMinute = (limit: number, key = 'b'): Bucket => ({ kind: 'sliding', key, policy: { limit, windowMs: MINUTE } })

/** Takes requests until one is refused; how many were allowed. */
async function allowedUntilRefused(take: () => { allowed: boolean } | Promise<{ allowed: boolean }>, max = 10_000): Promise<number> {
  let n = 0
  while (n < max && (await take()).allowed) n++
  return n
}

t.test('a burst gets exactly the limit, then 429 with a Retry-After until one more fits', async (t) => {
  const clock = manualClock(Date.UTC(2026, 0, 1, 0, 0, 0))
  const counter = memoryRateCounter(clock)
  const bucket = [perMinute(100)]
  t.equal(await allowedUntilRefused(() => counter.take(bucket)), 100)
  const refused = await counter.take(bucket)
  t.equal(refused.allowed, false)
  t.equal(refused.verdicts[0]!.remaining, 0)
  // At the start of a window with 100 counted: the next window begins in 60 s and this one then weighs 100 %.
  // All 100 sit in the current slice: it leaves the window once a window and a slice (66 s) have passed.
  t.equal(refused.verdicts[0]!.retryAfterMs, 66_000)
  clock.advance(refused.verdicts[0]!.retryAfterMs - 1)
  t.equal((await counter.take(bucket)).allowed, false, 'not a millisecond earlier')
  clock.advance(1)
  t.equal((await counter.take(bucket)).allowed, true, 'one fits once Retry-After has passed')
  t.equal((await counter.take(bucket)).allowed, true, 'and the whole budget again (the burst left at once)')
})

t.test('the window slides: a budget spent at the end of one window is not given again at the start of the next', async (t) => {
  const clock = manualClock(Date.UTC(2026, 0, 1, 0, 0, 59))
  const counter = memoryRateCounter(clock)
  const bucket = [perMinute(100)]
  t.equal(await allowedUntilRefused(() => counter.take(bucket)), 100, '100 in the last second of a fixed window')
  clock.advance(1_000) // 00:01:00, the next minute
  t.equal(await allowedUntilRefused(() => counter.take(bucket)), 0, 'nothing at the boundary: no double budget')
  clock.advance(58_000) // 00:01:58: the burst of 00:00:59 is still within the last 60 s
  t.equal(await allowedUntilRefused(() => counter.take(bucket)), 0, 'nothing within 60 s of the burst')
  clock.advance(7_000) // 00:02:05: its slice has left the window
  t.equal(await allowedUntilRefused(() => counter.take(bucket)), 100, 'the whole budget once it slid out')
})

t.test('over any 60 s span at most the limit is allowed, whatever the request pattern', async (t) => {
  const clock = manualClock(Date.UTC(2026, 0, 1, 0, 0, 17))
  const counter = memoryRateCounter(clock)
  const bucket = [perMinute(100)]
  const allowedAt: number[] = []
  for (let i = 0; i < 3_000; i++) {
    if ((await counter.take(bucket)).allowed) allowedAt.push(clock.now())
    clock.advance(97) // ~ 620 requests a minute
  }
  let worst = 0
  for (let i = 0, j = 0; i < allowedAt.length; i++) {
    while (allowedAt[i]! - allowedAt[j]! >= MINUTE) j++
    worst = Math.max(worst, i - j + 1)
  }
  t.equal(worst, 100, 'at most 100 in any 60 s, and the budget is used')
  // 4.85 minutes: at least the limit per window and a slice (66 s).
  t.ok(allowedAt.length >= Math.floor((3_000 * 97) / 66_000) * 100, `at least 100 per 66 s (${allowedAt.length})`)
})

t.test('every bucket of a request must allow it, and a refused request is counted in none', async (t) => {
  const clock = manualClock()
  const counter = memoryRateCounter(clock)
  const route = perMinute(10, 'route')
  const key = perMinute(3, 'key')
  t.equal(await allowedUntilRefused(() => counter.take([route, key])), 3, 'the stricter of the two wins')
  const refused = await counter.take([route, key])
  t.same(refused.verdicts.map((v) => v.allowed), [true, false])
  t.equal(await allowedUntilRefused(() => counter.take([route])), 7, 'the route bucket counted only the 3 allowed')
})

t.test('a quota counts in its calendar period and resets with the next', async (t) => {
  const clock = manualClock(Date.UTC(2026, 0, 31, 23, 59, 0))
  const counter = memoryRateCounter(clock)
  const quota = (): Bucket => {
    const p = quotaPeriod('day', clock.now())
    return { kind: 'fixed', key: `q:${p.id}`, limit: 5, periodStart: p.start, periodEnd: p.end }
  }
  t.equal(await allowedUntilRefused(() => counter.take([quota()])), 5)
  const refused = await counter.take([quota()])
  t.equal(refused.verdicts[0]!.retryAfterMs, 60_000, 'retry when the day ends')
  clock.advance(60_000)
  t.equal(await allowedUntilRefused(() => counter.take([quota()])), 5, 'a new day, a new quota')
  t.same(quotaPeriod('month', clock.now()), { id: '2026-02', start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) })
})

t.test('remaining counts down to 0 and the tightest bucket is the one reported', async (t) => {
  const now = Date.UTC(2026, 0, 1)
  const policy = { limit: 3, windowMs: MINUTE }
  const slice = now / 6_000
  t.same(slide(undefined, policy, now), [])
  t.same([0, 1, 2].map((c) => verdict(policy, c ? [[slice, c]] : [], now).remaining), [2, 1, 0])
  t.same(slide([[slice - 11, 5], [slice - 10, 1]], policy, now), [[slice - 10, 1]], 'slices out of the window are dropped')
  const loose = verdict({ limit: 100, windowMs: MINUTE }, [], now)
  const tight = verdict(policy, [], now)
  t.equal(tightest([loose, tight]), tight)
  const refused = verdict(policy, [[slice, 3]], now)
  t.equal(tightest([loose, refused, tight]), refused)
})

t.test('KEYGATE_RATE_LIMIT_DEFAULT reads off, N/unit and N/seconds, and nothing else', async (t) => {
  t.equal(parseRateLimit('off'), null)
  t.same(parseRateLimit('100/min'), { limit: 100, window_seconds: 60 })
  t.same(parseRateLimit('1000/hour'), { limit: 1000, window_seconds: 3600 })
  t.same(parseRateLimit('100/60s'), { limit: 100, window_seconds: 60 })
  t.same(parseRateLimit('5/30'), { limit: 5, window_seconds: 30 })
  for (const bad of ['100', '0/min', '100/week', '100/0', '100/90000', 'lots/min', '-1/min']) t.equal(parseRateLimit(bad), undefined, bad)
})
