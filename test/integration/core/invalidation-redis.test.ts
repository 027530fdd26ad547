import { Redis } from 'ioredis'
import t from 'tap'
import type { Invalidation } from '../../../core/invalidation.ts'
import { redisBus } from '../../../core/invalidation-redis.ts'
import { testRedisPrefix } from '../../helpers/redis.ts'
import { tcpProxy } from '../../helpers/tcp-proxy.ts'

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

t.test('a message is applied even when its generation is one this instance published while its subscriber was away', async (t) => {
  // The echo of that publication never came back; after Redis loses its data (a restart without persistence)
  // the generation counts again from zero, and another instance's message reaches the same number.
  const redis = await testRedisPrefix('bus-own')
  const relay = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(redis.url).port || 6379) })
  const clients: Redis[] = []
  const bus = (subscriberUrl: string) => {
    const commands = new Redis(redis.url)
    const subscriber = new Redis(subscriberUrl, { retryStrategy: () => 50 })
    clients.push(commands, subscriber)
    const seen: Invalidation[] = []
    const b = redisBus({ redis: commands, subscriber, prefix: redis.prefix, keysOf: () => [], tombstone: async () => {}, onResync: () => {} })
    b.subscribe((m) => seen.push(m))
    return { b, seen, subscriber }
  }
  const a = bus(`redis://127.0.0.1:${relay.port}`)
  const other = bus(redis.url)
  t.teardown(async () => { await a.b.close(); await other.b.close(); for (const c of clients) c.disconnect(); await relay.close(); await redis.drop() })
  await Promise.all([a.b.start(), other.b.start()])
  const until = async (ok: () => boolean) => {
    const deadline = Date.now() + 2000
    while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }

  relay.cut()
  await until(() => a.subscriber.status !== 'ready')
  await a.b.publish({ kind: 'key', keyHash: 'mine' })
  const gen = Number(await redis.client.get(`${redis.prefix}generation`))
  await until(() => other.seen.length === 1)
  relay.restore()
  await until(() => a.subscriber.status === 'ready')
  await new Promise((r) => setTimeout(r, 100))

  await redis.client.set(`${redis.prefix}generation`, String(gen - 1))
  await other.b.publish({ kind: 'key', keyHash: 'theirs' })
  await until(() => a.seen.length === 2)
  t.same(a.seen, [{ kind: 'key', keyHash: 'mine' }, { kind: 'key', keyHash: 'theirs' }], 'the other instance\'s message was applied')
})
