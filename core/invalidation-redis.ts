import type { RedisClient } from './redis-connect.ts'
import { handlerSet, type Invalidation, type InvalidationBus } from './invalidation.ts'

/**
 * Invalidation over Redis: `publish` tombstones the shared cache entries the message names, bumps the
 * deployment's generation and publishes on its channel; it rejects when Redis cannot take it (the admin call
 * then reports the failure). Each instance tracks the generation: a message that skips one, a reconnect of
 * the subscriber, or a generation that moved without a message (checked every `checkMs`) means messages were
 * missed, and `onResync` must flush the in-process cache.
 */
export interface RedisBusOptions {
  redis: RedisClient
  /** A second connection: a subscribed Redis connection can do nothing else. */
  subscriber: RedisClient
  prefix: string
  /** The shared-cache keys a message names (tombstoned before it is published). */
  keysOf(message: Invalidation): string[]
  tombstone(keys: string[]): Promise<void>
  onResync(reason: string): void
  checkMs?: number
}

interface Envelope { m: Invalidation; at: number; gen: number }

export function redisBus(options: RedisBusOptions): InvalidationBus & { start(): Promise<void>; close(): Promise<void> } {
  const channel = `${options.prefix}invalidation`
  const genKey = `${options.prefix}generation`
  const handlers = handlerSet()
  let lastGen: number | undefined
  let timer: NodeJS.Timeout | undefined

  // Generations this instance published and already applied: their echo only advances the generation.
  const own = new Set<number>()

  const resync = (reason: string) => {
    lastGen = undefined
    // An echo lost while the subscriber was away would otherwise stay here, and after Redis loses its data
    // (the generation counts from zero again) swallow another instance's message with the same number.
    // Forgetting them costs at most an own message applied twice, which changes nothing.
    own.clear()
    options.onResync(reason)
  }
  const deliver = (envelope: Envelope, local: boolean) => {
    if (!local) {
      if (lastGen !== undefined && envelope.gen > lastGen + 1) resync('missed messages')
      if (lastGen === undefined || envelope.gen > lastGen) lastGen = envelope.gen
      if (own.delete(envelope.gen)) return
    } else {
      own.add(envelope.gen)
      if (own.size > 10_000) own.clear()
    }
    handlers.deliver(envelope.m, envelope.at)
  }

  options.subscriber.on('message', (ch: string, text: string) => {
    if (ch !== channel) return
    try {
      deliver(JSON.parse(text) as Envelope, false)
    } catch {
      // Not ours: ignored.
    }
  })
  let readyOnce = false
  options.subscriber.on('ready', () => {
    // ioredis re-subscribes by itself after a reconnect; what was published meanwhile is lost.
    if (readyOnce) resync('subscriber reconnected')
    readyOnce = true
  })

  // A generation ahead of what arrived may just be a message on its way: it counts as missed only when it
  // is still ahead at the next check.
  let ahead: number | undefined
  async function checkGeneration() {
    const gen = Number((await options.redis.get(genKey)) ?? 0)
    if (lastGen === undefined) {
      lastGen = gen
      return
    }
    if (ahead !== undefined && lastGen < ahead) {
      ahead = undefined
      resync('generation moved without a message')
      lastGen = gen
      return
    }
    ahead = gen > lastGen ? gen : undefined
  }

  return {
    kind: 'redis',
    async publish(message) {
      await options.tombstone(options.keysOf(message))
      const gen = await options.redis.incr(genKey)
      const envelope: Envelope = { m: message, at: Date.now(), gen }
      await options.redis.publish(channel, JSON.stringify(envelope))
      // This instance applies it before the caller answers; its own echo then only advances the generation.
      deliver(envelope, true)
    },
    subscribe: handlers.add,
    applyHere: (message) => handlers.deliver(message, Date.now()),
    async start() {
      await options.subscriber.subscribe(channel)
      await checkGeneration().catch(() => {})
      timer = setInterval(() => { checkGeneration().catch(() => {}) }, options.checkMs ?? 5000)
      timer.unref()
    },
    async close() {
      if (timer) clearInterval(timer)
      options.subscriber.disconnect()
    },
  }
}
