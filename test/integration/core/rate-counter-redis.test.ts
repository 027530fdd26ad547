import t from 'tap'
import { Redis } from 'ioredis'
import { redisRateCounter } from '../../../core/rate-counter-redis.ts'
import type { Bucket } from '../../../core/rate-counter.ts'
import { quotaPeriod } from '../../../core/rate-limit.ts'
import { testRedisPrefix, TEST_REDIS_URL } from '../../helpers/redis.ts'

const perMinute = (limit: number, key: string): Bucket => ({ kind: 'sliding', key: `rl:{t}:${key}`, policy: { limit, windowMs: 60_000 } })

t.test('concurrent requests from two clients share one budget: exactly the limit is allowed', async (t) => {
  const redis = await testRedisPrefix('ratecounter')
  t.teardown(() => redis.drop())
  const other = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 })
  t.teardown(() => other.disconnect())
  const a = redisRateCounter(redis.client, { prefix: redis.prefix })
  const b = redisRateCounter(other, { prefix: redis.prefix })
  const bucket = [perMinute(100, 'shared')]
  const burstStarted = performance.now()
  const results = await Promise.all(Array.from({ length: 250 }, (_, i) => (i % 2 ? a : b).take(bucket)))
  const burstMs = performance.now() - burstStarted
  t.equal(results.filter((r) => r.allowed).length, 100)
  const refused = results.find((r) => !r.allowed)!
  t.equal(refused.verdicts[0]!.remaining, 0)
  // The first count's slice leaves the window 60 to 66 s after that count (slices are 6 s, aligned on the clock);
  // the refusal came up to `burstMs` after it (a burst that straddles a slice boundary frees up that much sooner).
  const retry = refused.verdicts[0]!.retryAfterMs
  t.ok(retry >= 60_000 - Math.ceil(burstMs) && retry <= 66_000, `Retry-After when the first counted slice leaves the window (${retry} ms; burst ${burstMs.toFixed(0)} ms)`)
  t.same(results.filter((r) => r.allowed).map((r) => r.verdicts[0]!.remaining).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i), 'each allowed request saw its own remaining')
  const ttl = await redis.client.pttl(`${redis.prefix}rl:{t}:shared`)
  t.ok(ttl > 60_000 && ttl <= 66_000, 'the bucket expires a window and a slice after its last count')
})

t.test('a request refused by one bucket is counted in none; a quota counts until its period ends', async (t) => {
  const redis = await testRedisPrefix('ratecounter')
  t.teardown(() => redis.drop())
  const counter = redisRateCounter(redis.client, { prefix: redis.prefix })
  const p = quotaPeriod('day', Date.now())
  const quota: Bucket = { kind: 'fixed', key: `quota:{t}:k:${p.id}`, limit: 3, periodStart: p.start, periodEnd: p.end }
  const route = perMinute(10, 'route')
  const taken = []
  for (let i = 0; i < 5; i++) taken.push(await counter.take([route, quota]))
  t.same(taken.map((r) => r.allowed), [true, true, true, false, false])
  t.same(taken[3]!.verdicts.map((v) => v.allowed), [true, false], 'the quota refused, the route would have allowed')
  t.equal(Number(await redis.client.get(`${redis.prefix}quota:{t}:k:${p.id}`)), 3)
  t.same(Object.values(await redis.client.hgetall(`${redis.prefix}rl:{t}:route`)).map(Number), [3], 'the route bucket counted the 3 allowed only')
  const expireAt = await redis.client.pexpiretime(`${redis.prefix}quota:{t}:k:${p.id}`)
  t.equal(expireAt, p.end + 86_400_000, 'the quota counter lives a day past its period')
})

t.test('buckets of different subjects (a per-address route limit, a key\'s own limit) are each counted', async (t) => {
  const redis = await testRedisPrefix('ratecounter')
  t.teardown(() => redis.drop())
  const counter = redisRateCounter(redis.client, { prefix: redis.prefix })
  const address: Bucket = { kind: 'sliding', key: 'rl:r:nat:{a:10.0.0.9}', policy: { limit: 3, windowMs: 60_000 } }
  const key = (id: string): Bucket => ({ kind: 'sliding', key: `rl:{u:${id}}:k:${id}:r:nat`, policy: { limit: 2, windowMs: 60_000 } })
  const taken = []
  for (const id of ['a', 'a', 'a', 'b', 'b']) taken.push(await counter.take([address, key(id)]))
  t.same(taken.map((r) => r.allowed), [true, true, false, true, false], 'key a stops at its 2; b is stopped by the address\'s 3')
  t.same(taken[2]!.verdicts.map((v) => v.allowed), [true, false])
  t.same(taken[4]!.verdicts.map((v) => v.allowed), [false, true])
})

t.test('a Redis that lost the script (restart, SCRIPT FLUSH) gets it again in the same call', async (t) => {
  const redis = await testRedisPrefix('ratecounter')
  t.teardown(() => redis.drop())
  const latencies: number[] = []
  const counter = redisRateCounter(redis.client, { prefix: redis.prefix, observe: (s) => void latencies.push(s) })
  await redis.client.script('FLUSH')
  t.equal((await counter.take([perMinute(1, 'noscript')])).allowed, true)
  t.equal((await counter.take([perMinute(1, 'noscript')])).allowed, false)
  t.equal(latencies.length, 2, 'each round trip observed')
})

t.test('a Redis that is away makes the call fail (the stage fails open), never hang', async (t) => {
  const away = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
  away.on('error', () => {})
  t.teardown(() => away.disconnect())
  const counter = redisRateCounter(away, { prefix: 'x:' })
  await t.rejects(async () => counter.take([perMinute(1, 'away')]))
})

/** A bucket's count in Redis: every slice of its hash, or a quota's counter. */
async function countIn(redis: Redis, key: string): Promise<number> {
  if ((await redis.type(key)) === 'string') return Number(await redis.get(key))
  return Object.values(await redis.hgetall(key)).reduce((n, c) => n + Number(c), 0)
}

t.test('leases: two counters on one Redis never let through more than the limit, and together spend it all', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  const other = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 })
  const a = redisRateCounter(redis.client, { prefix: redis.prefix })
  const b = redisRateCounter(other, { prefix: redis.prefix })
  t.teardown(async () => { await a.close?.(); await b.close?.(); other.disconnect(); await redis.drop() })
  const bucket = [perMinute(1000, 'leased')]
  let roundTrips = 0
  const counted = redisRateCounter({ evalsha: (...args) => { roundTrips++; return redis.client.evalsha(...args) }, eval: (...args) => redis.client.eval(...args) }, { prefix: redis.prefix })
  t.teardown(() => counted.close?.())
  const results = []
  // 1300 asked, 50 at a time across three counters, as 50 connections would.
  let tripsForFirst600 = 0
  for (let batch = 0; batch < 26; batch++) {
    results.push(...await Promise.all(Array.from({ length: 50 }, (_, i) => [a, b, counted][i % 3]!.take(bucket))))
    if (batch === 11) tripsForFirst600 = roundTrips
  }
  const allowed = results.filter((r) => r.allowed).length
  t.ok(allowed <= 1000, `never more than the limit (${allowed})`)
  t.ok(allowed >= 1000 - 3 * 10, `at most a lease per counter left unspent (${allowed})`)
  t.ok(tripsForFirst600 <= 40, `a counter's 200 first requests mostly spent its leases, without a round trip (${tripsForFirst600} round trips)`)
  const remaining = results.filter((r) => r.allowed).map((r) => r.verdicts[0]!.remaining)
  t.ok(remaining.every((n) => n >= 0 && n < 1000), 'each allowed request was told what is left as its counter knows it')
  await Promise.all([a.close?.(), b.close?.(), counted.close?.()])
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:leased`), allowed, 'once closed, Redis counts the requests let through, not the leases')
})

t.test('leases: units not spent are given back, so they are not counted twice', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  t.teardown(() => redis.drop())
  const a = redisRateCounter(redis.client, { prefix: redis.prefix })
  const b = redisRateCounter(redis.client, { prefix: redis.prefix })
  t.teardown(async () => { await a.close?.(); await b.close?.() })
  const p = quotaPeriod('day', Date.now())
  const quota: Bucket = { kind: 'fixed', key: `quota:{t}:k:${p.id}`, limit: 10_000, periodStart: p.start, periodEnd: p.end }
  const buckets = [perMinute(1000, 'given-back'), quota]
  for (let i = 0; i < 3; i++) t.equal((await a.take(buckets)).allowed, true)
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:given-back`), 10, 'a lease of 1 % counted ahead')
  t.equal(await countIn(redis.client, `${redis.prefix}quota:{t}:k:${p.id}`), 100, 'a quota leases 1 % of it too')
  const seen = await b.take(buckets)
  t.same(seen.verdicts.map((v) => v.remaining), [1000 - 10 - 1, 10_000 - 100 - 1], 'another instance sees the lease as spent')
  await a.close?.()
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:given-back`), 3 + 10, 'closed: the 7 units it did not spend are back; the other\'s lease stays')
  t.equal(await countIn(redis.client, `${redis.prefix}quota:{t}:k:${p.id}`), 3 + 100)
  await b.close?.()
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:given-back`), 4, 'each request counted once')
  t.equal(await countIn(redis.client, `${redis.prefix}quota:{t}:k:${p.id}`), 4)
})

t.test('leases: an idle lease goes back by itself; a refused request gives back what it took', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  t.teardown(() => redis.drop())
  const a = redisRateCounter(redis.client, { prefix: redis.prefix, idleMs: 50 })
  t.teardown(() => a.close?.())
  t.equal((await a.take([perMinute(1000, 'idle')])).allowed, true)
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:idle`), 10)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(await countIn(redis.client, `${redis.prefix}rl:{t}:idle`), 1, 'the sweep gave the 9 back')
  // Two subjects (two scripts): the second refuses, the first's lease (counted by this request) goes back.
  const address: Bucket = { kind: 'sliding', key: 'rl:r:nat:{a:10.0.0.9}', policy: { limit: 1000, windowMs: 60_000 } }
  const full: Bucket = { kind: 'sliding', key: 'rl:{u:x}:k:x:r:nat', policy: { limit: 1, windowMs: 60_000 } }
  t.equal((await a.take([full])).allowed, true)
  t.equal((await a.take([address, full])).allowed, false)
  t.equal(await countIn(redis.client, `${redis.prefix}rl:r:nat:{a:10.0.0.9}`), 0, 'nothing counted for the refused request')
})

t.test('leases: a lease taken under one limit is given back when the limit changes', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  t.teardown(() => redis.drop())
  const a = redisRateCounter(redis.client, { prefix: redis.prefix })
  t.teardown(() => a.close?.())
  t.equal((await a.take([perMinute(1000, 'lowered')])).allowed, true)
  const lowered = [perMinute(5, 'lowered')]
  const first = await a.take(lowered)
  t.same([first.allowed, first.verdicts[0]!.remaining], [true, 3], 'the old lease\'s 9 units went back with the new call')
  const rest = []
  for (let i = 0; i < 4; i++) rest.push((await a.take(lowered)).allowed)
  t.same(rest, [true, true, true, false], 'five in all under the new limit')
})

t.test('leases: the sliding window still slides, and never gives a double budget at its boundary', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  const other = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 })
  const counters = [redisRateCounter(redis.client, { prefix: redis.prefix }), redisRateCounter(other, { prefix: redis.prefix })]
  t.teardown(async () => { await Promise.all(counters.map((c) => c.close?.())); other.disconnect(); await redis.drop() })
  // 300 a second in slices of 100 ms, leases of 3: several windows, hammered by both counters, 10 at a time each.
  const bucket: Bucket[] = [{ kind: 'sliding', key: 'rl:{t}:slides', policy: { limit: 300, windowMs: 1000 } }]
  const allowedAt: number[] = []
  const started = Date.now()
  await Promise.all(counters.flatMap((c) => Array.from({ length: 10 }, async () => {
    while (Date.now() - started < 2_600) {
      const r = await c.take(bucket)
      if (r.allowed) allowedAt.push(r.now)
      else await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })))
  allowedAt.sort((x, y) => x - y)
  let most = 0
  for (let i = 0, j = 0; i < allowedAt.length; i++) {
    while (allowedAt[i]! - allowedAt[j]! >= 1000) j++
    most = Math.max(most, i - j + 1)
  }
  t.ok(most <= 300, `never more than 300 in any second (most: ${most})`)
  t.ok(allowedAt.length >= 2 * 300, `the window moved on: ${allowedAt.length} let through in 2.6 s`)
})

t.test('leases: a request a held lease serves is decided synchronously, without a promise', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  t.teardown(() => redis.drop())
  const a = redisRateCounter(redis.client, { prefix: redis.prefix })
  t.teardown(() => a.close?.())
  const first = a.take([perMinute(1000, 'sync')])
  t.ok(first instanceof Promise, 'the first asks Redis')
  t.equal((await first).verdicts[0]!.remaining, 999)
  const second = a.take([perMinute(1000, 'sync')])
  t.notOk(second instanceof Promise, 'the next spends the lease')
  t.same([(second as Awaited<typeof first>).allowed, (second as Awaited<typeof first>).verdicts[0]!.remaining], [true, 998])
})

t.test('leases: a quiet bucket whose lease went back unspent is counted one request per round trip, then leased again as it gets busy', async (t) => {
  const redis = await testRedisPrefix('ratelease')
  t.teardown(() => redis.drop())
  let roundTrips = 0
  const client = { evalsha: (...args: Parameters<Redis['evalsha']>) => { roundTrips++; return redis.client.evalsha(...args) }, eval: (...args: Parameters<Redis['eval']>) => redis.client.eval(...args) }
  const a = redisRateCounter(client, { prefix: redis.prefix, idleMs: 50 })
  t.teardown(() => a.close?.())
  const bucket = [perMinute(1000, 'quiet')]
  const key = `${redis.prefix}rl:{t}:quiet`
  const pause = () => new Promise((r) => setTimeout(r, 300))
  t.equal((await a.take(bucket)).allowed, true)
  t.equal(await countIn(redis.client, key), 10, 'a first request takes a full lease')
  await pause()
  t.equal(await countIn(redis.client, key), 1, 'which went back unspent')
  for (let i = 0; i < 2; i++) {
    t.equal((await a.take(bucket)).allowed, true)
    await pause()
  }
  t.equal(roundTrips, 3, 'one round trip per request')
  t.equal(await countIn(redis.client, key), 3, 'and nothing leased to give back: each request counted once')
  roundTrips = 0
  for (let i = 0; i < 30; i++) t.equal((await a.take(bucket)).allowed, true)
  t.ok(roundTrips <= 8, `busy again: the asks double up to a full lease (${roundTrips} round trips for 30 requests)`)
  await a.close?.()
  t.equal(await countIn(redis.client, key), 33, 'once closed, each request counted once')
})
