import type { Db, Queryable } from './db.ts'
import { KeygateError } from './errors.ts'
import { publishAll, type Invalidation, type InvalidationBus } from './invalidation.ts'
import { invalidationOutbox } from './invalidation-outbox.ts'
import type { Logger } from './logger.ts'
import type { Metrics } from './metrics.ts'

/** Collects what a write announces; called inside the write's transaction. */
export type Announce = (message: Invalidation) => void

/**
 * How every access-removing write (revoke, roll, expiry, logout, refresh-token reuse, password change,
 * deactivation) tells every instance, used alike by the admin API, the CLI and the key-expiry sweeper:
 *
 *   await publisher.commit(async (tx, announce) => { …state change…; …audit row…; announce(message) })
 *
 * The state change, its audit row and the outbox rows of what it announced commit in one transaction, or none
 * of them does. After the commit the messages are published (this instance applies them before `commit`
 * resolves) and their rows deleted. A publish that fails leaves its rows to the drain that every instance runs
 * (`start()`), as does a process that dies between the commit and the publish: an announcement can be late,
 * never lost. On the in-process transport (one process, the embedded database) there is nobody else to tell:
 * no rows are written and the messages are applied after the commit.
 */
export interface InvalidationPublisher {
  /**
   * Runs `write` in one transaction with the outbox rows of what it announces; publishes them after the commit.
   * Resolves with what `write` returned.
   * @throws KeygateError INVALIDATION_FAILED when the change committed but a message could not be published now
   *   (this instance applied it; the drain publishes it once the transport answers). Whatever `write` throws
   *   (nothing is committed then).
   */
  commit<T>(write: (tx: Queryable, announce: Announce) => Promise<T>): Promise<T>
  /** Announces messages that follow no database change of their own (the signing keys were rotated). */
  announce(messages: readonly Invalidation[]): Promise<void>
  /** Publishes what the outbox still owes; resolves with how many went out. */
  drain(): Promise<number>
  /** Drains every `drainMs` until `stop()` (every long-running instance does, so an instance that died is covered). */
  start(): void
  stop(): void
}

export interface InvalidationPublisherDeps {
  db: Db
  bus: InvalidationBus
  /** How often `start()` drains the outbox. */
  drainMs: number
  /** Rows younger than this are left to the instance publishing them (see `invalidation-outbox.ts`). */
  settleMs: number
  metrics?: Pick<Metrics, 'invalidations'>
  logger?: Logger
  /** Runs between the commit and the publish (a test hook: crash there). */
  beforePublish?(): void
}

export function invalidationPublisher(deps: InvalidationPublisherDeps): InvalidationPublisher {
  const { db, bus, metrics, logger } = deps
  const outboxed = bus.kind !== 'in-process'
  const outbox = invalidationOutbox(db, { settleMs: deps.settleMs })

  const sent = { publish: async (m: Invalidation) => {
    await bus.publish(m)
    metrics?.invalidations.inc({ direction: 'sent' })
  } }

  /** Publishes `messages`; on a failure applies the rest here and throws INVALIDATION_FAILED (the rows stay owed). */
  async function publish(messages: readonly Invalidation[], ids: readonly string[]): Promise<void> {
    try {
      await publishAll(sent, messages)
    } catch (err) {
      // This instance at least forgets them now; the others will hear them from the outbox.
      for (const m of messages) bus.applyHere(m)
      metrics?.invalidations.inc({ direction: 'failed' })
      logger?.error('invalidation could not be published', { kinds: [...new Set(messages.map((m) => m.kind))], owed: ids.length, error: String((err as Error)?.message ?? err) })
      throw new KeygateError('INVALIDATION_FAILED', 'invalidation could not be published', { cause: err })
    }
    // A row left behind (the database went away just now) is published once more by a drain: harmless.
    await outbox.remove(ids).catch((err: unknown) => logger?.warn('published invalidations stay in the outbox', { error: String((err as Error)?.message ?? err) }))
  }

  let busy = false
  async function drain(): Promise<number> {
    if (!outboxed || busy) return 0
    busy = true
    try {
      const count = await outbox.drain(sent.publish)
      if (count) logger?.info('owed invalidations published', { count })
      return count
    } finally {
      busy = false
    }
  }

  let timer: NodeJS.Timeout | undefined
  return {
    async commit(write) {
      const announced: Invalidation[] = []
      const announce: Announce = (m) => { announced.push(m) }
      const { result, ids } = await db.transaction(async (tx) => {
        const result = await write(tx, announce)
        return { result, ids: outboxed ? await outbox.add(tx, announced) : [] }
      })
      if (announced.length) {
        deps.beforePublish?.()
        await publish(announced, ids)
      }
      return result
    },
    async announce(messages) {
      if (!messages.length) return
      const ids = outboxed ? await outbox.add(db, messages) : []
      await publish(messages, ids)
    },
    drain,
    start() {
      if (!outboxed || timer) return
      // The transport (or the database) still away: the next tick tries again.
      timer = setInterval(() => { drain().catch(() => {}) }, deps.drainMs)
      timer.unref()
    },
    stop() {
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }
}
