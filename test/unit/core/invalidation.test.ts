import t from 'tap'
import { inProcessBus, publishAll, type Invalidation, type InvalidationBus } from '../../../core/invalidation.ts'

t.test('the in-process bus delivers each message to every subscriber until it unsubscribes', async (t) => {
  const bus = inProcessBus()
  const a: Invalidation[] = []
  const b: Invalidation[] = []
  bus.subscribe((m) => a.push(m))
  const stopB = bus.subscribe((m) => b.push(m))
  await bus.publish({ kind: 'user', userId: 'u1' })
  stopB()
  await bus.publish({ kind: 'session', sessionId: 's1' })
  t.same(a, [{ kind: 'user', userId: 'u1' }, { kind: 'session', sessionId: 's1' }])
  t.same(b, [{ kind: 'user', userId: 'u1' }])
})

t.test('publishAll publishes every message even when one fails, then rejects with the first failure', async (t) => {
  const sent: Invalidation[] = []
  const flaky: Pick<InvalidationBus, 'publish'> = {
    async publish(m) {
      if (m.kind === 'session') throw new Error(`lost ${m.sessionId}`)
      sent.push(m)
    },
  }
  const messages: Invalidation[] = [
    { kind: 'user', userId: 'u1' },
    { kind: 'session', sessionId: 's1' },
    { kind: 'session', sessionId: 's2' },
    { kind: 'key', keyHash: 'h1' },
  ]
  await t.rejects(publishAll(flaky, messages), { message: 'lost s1' })
  t.same(sent, [{ kind: 'user', userId: 'u1' }, { kind: 'key', keyHash: 'h1' }], 'the messages after the failure still went out')
  sent.length = 0
  await publishAll(flaky, [{ kind: 'key', keyHash: 'h2' }])
  t.same(sent, [{ kind: 'key', keyHash: 'h2' }], 'resolves when all went out')
})
