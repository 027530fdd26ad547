/**
 * Invalidation: every write that removes access announces one of these with its commit (see
 * `invalidation-publisher.ts`); every process that caches credentials drops the matching entries (see
 * `invalidation-feed.ts`). This module holds the messages and the in-process transport; the transports that
 * cross processes (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) carry the same messages.
 */
export type Invalidation =
  | { kind: 'key'; keyHash: string }
  | { kind: 'session'; sessionId: string }
  | { kind: 'user'; userId: string }
  /** The identity signing keys rotated: reload them. */
  | { kind: 'signing-keys' }

/** A handler told every message this instance applies, with when it was sent (ms since the epoch). */
export type InvalidationHandler = (message: Invalidation, sentAt: number) => void

/** One way of carrying messages to every instance; chosen once per process (`invalidation-transport.ts`). */
export interface InvalidationBus {
  readonly kind: 'redis' | 'postgres' | 'in-process'
  /** Delivers to every instance, this one before it resolves; rejects when the message could not be published. */
  publish(message: Invalidation): Promise<void>
  subscribe(handler: InvalidationHandler): () => void
  /** Applies a message on this instance only: what could not be published is at least forgotten here. */
  applyHere(message: Invalidation): void
}

/**
 * Publishes every message, even when one fails (each that goes out still reaches every instance), then
 * rejects with the first failure, so a change that ends several credentials is never half told.
 */
export async function publishAll(bus: Pick<InvalidationBus, 'publish'>, messages: readonly Invalidation[]): Promise<void> {
  let failure: unknown
  for (const m of messages) {
    try {
      await bus.publish(m)
    } catch (err) {
      failure ??= err
    }
  }
  if (failure !== undefined) throw failure
}

/** Subscribers of one bus, told in the order they subscribed. */
export function handlerSet() {
  const handlers = new Set<InvalidationHandler>()
  return {
    add(handler: InvalidationHandler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    deliver(message: Invalidation, sentAt: number) {
      for (const h of handlers) h(message, sentAt)
    },
  }
}

/** The transport of one process alone (the embedded database): delivering is applying. */
export function inProcessBus(): InvalidationBus {
  const handlers = handlerSet()
  return {
    kind: 'in-process',
    async publish(message) {
      handlers.deliver(message, Date.now())
    },
    subscribe: handlers.add,
    applyHere: (message) => handlers.deliver(message, Date.now()),
  }
}
