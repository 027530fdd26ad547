/**
 * Invalidation: every write that removes access publishes one of these after it commits; every process
 * that caches credentials drops the matching entries. This module is the in-process bus; transports that
 * cross processes (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) carry the same messages.
 */
export type Invalidation =
  | { kind: 'key'; keyHash: string }
  | { kind: 'session'; sessionId: string }
  | { kind: 'user'; userId: string }
  /** The identity signing keys rotated: reload them. */
  | { kind: 'signing-keys' }

export interface InvalidationBus {
  /** Delivers to every subscriber; rejects when the message could not be published. */
  publish(message: Invalidation): Promise<void>
  subscribe(handler: (message: Invalidation) => void): () => void
}

/**
 * Publishes every message, even when one fails (each that goes out still reaches every instance), then
 * rejects with the first failure, so a change that ends several credentials is never half told.
 */
export async function publishAll(bus: InvalidationBus, messages: readonly Invalidation[]): Promise<void> {
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

export function inProcessBus(): InvalidationBus {
  const handlers = new Set<(m: Invalidation) => void>()
  return {
    async publish(message) {
      for (const h of handlers) h(message)
    },
    subscribe(handler) {
      handlers.add(handler)
      return () => handlers.delete(handler)
    },
  }
}
