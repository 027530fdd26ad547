import { Redis } from 'ioredis'
import t from 'tap'
import type { Invalidation } from '../../../core/invalidation.ts'
import { redisBus } from '../../../core/invalidation-redis.ts'
import { testRedisPrefix } from '../../helpers/redis.ts'

t.test('every instance applies a message once: the publisher at once, the others when it arrives, nobody twice', async (t) => {
  const redis = await testRedisPrefix('bus')
  const clients: Redis[] = []
  const bus = () => {
    const commands = new Redis(redis.url)
    const subscriber = new Redis(redis.url)
    clients.push(commands, subscriber)
    const seen: Invalidation[] = []
    const b = redisBus({ redis: commands, subscriber, prefix: redis.prefix, keysOf: () => [], tombstone: async () => {}, onResync: () => {} })
    b.subscribe((m) => seen.push(m))
    return { b, seen }
  }
  const a = bus()
  const other = bus()
  t.teardown(async () => { await a.b.close(); await other.b.close(); for (const c of clients) c.disconnect(); await redis.drop() })
  await Promise.all([a.b.start(), other.b.start()])

  await a.b.publish({ kind: 'key', keyHash: 'h1' })
  t.same(a.seen, [{ kind: 'key', keyHash: 'h1' }], 'the publisher applied it before publish resolved')
  const deadline = Date.now() + 2000
  while (other.seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  await new Promise((r) => setTimeout(r, 100)) // room for a duplicate echo to arrive
  t.same(other.seen, [{ kind: 'key', keyHash: 'h1' }], 'the other instance applied it once')
  t.same(a.seen, [{ kind: 'key', keyHash: 'h1' }], 'the publisher did not apply its own echo again')
})
