import t from 'tap'
import { redisSharedCache } from '../../../core/cache-redis.ts'
import { testRedisPrefix } from '../../helpers/redis.ts'

t.test('reads of one turn go to Redis as one MGET, and each gets its own answer: record, absence, tombstone, nothing', async (t) => {
  const r = await testRedisPrefix('cache_redis')
  const monitor = await r.client.monitor()
  t.teardown(async () => { monitor.disconnect(); await r.drop() })
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((a) => a.startsWith(r.prefix))) seen.push(args)
  })

  const cache = redisSharedCache(r.client, r.prefix)
  await cache.setIfAbsent('k:known', '{"userId":"u1"}', 60_000)
  await cache.setIfAbsent('k:absent', null, 60_000)
  await cache.setIfAbsent('k:revoked', '{"userId":"u2"}', 60_000)
  await cache.tombstone(['k:revoked'])
  await new Promise((resolve) => setTimeout(resolve, 50))
  seen.length = 0

  const answers = await Promise.all(['k:known', 'k:absent', 'k:revoked', 'k:never', 'k:known'].map((key) => cache.get(key)))
  t.same(answers, ['{"userId":"u1"}', null, undefined, undefined, '{"userId":"u1"}'], 'a record, a known absence, a tombstone and a miss (a miss: ask the database)')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(seen.map((args) => args[0]!.toLowerCase()), ['mget'], 'one command for the five reads')
  t.same(seen[0]!.slice(1), ['known', 'absent', 'revoked', 'never'].map((k) => `${r.prefix}cache:k:${k}`), 'each key once')

  // A setIfAbsent never writes over what is there: the tombstone stays.
  await cache.setIfAbsent('k:revoked', '{"userId":"u2"}', 60_000)
  t.equal(await cache.get('k:revoked'), undefined)
})

t.test('a read while Redis is away fails (the cache layer is skipped), and the reads after it work again', async (t) => {
  const r = await testRedisPrefix('cache_redis_down')
  t.teardown(() => r.drop())
  const cache = redisSharedCache(r.client, r.prefix)
  await cache.setIfAbsent('k:a', '{"userId":"u1"}', 60_000)
  r.client.disconnect()
  await t.rejects(Promise.all([cache.get('k:a'), cache.get('k:b')]))
  await r.client.connect()
  t.equal(await cache.get('k:a'), '{"userId":"u1"}')
})
