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
  await t.rejects(counter.take([perMinute(1, 'away')]))
})
