import t from 'tap'
import { createMetrics } from '../../../core/metrics.ts'
import { inProcessBus, type Invalidation } from '../../../core/invalidation.ts'
import { invalidationFeed } from '../../../core/invalidation-feed.ts'
import type { InvalidationTransport } from '../../../core/invalidation-transport.ts'
import { jsonLogger } from '../../../core/logger.ts'

function transport() {
  const resyncs: Array<(reason: string) => void> = []
  const bus: InvalidationTransport = Object.assign(inProcessBus(), { onResync: (h: (reason: string) => void) => { resyncs.push(h) } })
  return { bus, resync: (reason: string) => { for (const h of resyncs) h(reason) } }
}

t.test('the feed has one listener, told every message and every resync, and counts them', async (t) => {
  const { bus, resync } = transport()
  const metrics = createMetrics({ defaultMetrics: false })
  const feed = invalidationFeed(bus, { metrics, logger: jsonLogger({ level: 'silent' }) })
  const heard: Array<Invalidation | string> = []
  feed.listen({ message: (m) => heard.push(m), resync: (reason) => heard.push(`resync: ${reason}`) })
  t.throws(() => feed.listen({ message: () => {}, resync: () => {} }), 'a second listener is refused')

  await bus.publish({ kind: 'key', keyHash: 'h1' })
  resync('listener reconnected')
  bus.applyHere({ kind: 'user', userId: 'u1' })
  t.same(heard, [{ kind: 'key', keyHash: 'h1' }, 'resync: listener reconnected', { kind: 'user', userId: 'u1' }])
  const received = (await metrics.invalidations.get()).values.find((v) => v.labels.direction === 'received')
  t.equal(received?.value, 2)
  const flushes = (await metrics.cacheFlushes.get()).values.find((v) => v.labels.reason === 'listener reconnected')
  t.equal(flushes?.value, 1)
})
