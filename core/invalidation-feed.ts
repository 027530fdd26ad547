import type { Invalidation } from './invalidation.ts'
import type { InvalidationTransport } from './invalidation-transport.ts'
import type { Logger } from './logger.ts'
import type { Metrics } from './metrics.ts'

/** What a process that caches credentials does with the feed: one handler, told everything in order. */
export interface InvalidationListener {
  /** A message this instance must apply (its own publications included). */
  message(message: Invalidation): void
  /** Messages may have been missed (a reconnect, a skipped generation): drop everything cached. */
  resync(reason: string): void
}

/**
 * The receiving side of invalidation, for the gateway: every message the transport delivers, counted and timed
 * (the delay from publication to this instance applying it), goes to the one listener, which does everything
 * that follows from it in the order it writes down; a resync is logged and counted, then passed on.
 * @throws Error when a second listener is set: what a message does must be written in one place.
 */
export function invalidationFeed(transport: InvalidationTransport, deps: { metrics: Pick<Metrics, 'invalidations' | 'invalidationDelay' | 'cacheFlushes'>; logger: Logger }) {
  const { metrics, logger } = deps
  let listening = false
  return {
    listen(listener: InvalidationListener): void {
      if (listening) throw new Error('the invalidation feed has one listener')
      listening = true
      transport.subscribe((m, sentAt) => {
        metrics.invalidations.inc({ direction: 'received' })
        metrics.invalidationDelay.observe({ kind: m.kind }, Math.max(0, Date.now() - sentAt) / 1000)
        listener.message(m)
      })
      transport.onResync((reason) => {
        logger.warn('flushing the credential caches: invalidation messages may have been missed', { reason })
        metrics.cacheFlushes.inc({ reason })
        listener.resync(reason)
      })
    },
  }
}

export type InvalidationFeed = ReturnType<typeof invalidationFeed>
