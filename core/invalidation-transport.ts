import { redisSharedCache } from './cache-redis.ts'
import type { Cleanups } from './cleanups.ts'
import { cacheKeyOf } from './credential-keys.ts'
import type { Db } from './db.ts'
import { inProcessBus, type InvalidationBus } from './invalidation.ts'
import { pgNotifyBus } from './invalidation-pg.ts'
import { redisBus } from './invalidation-redis.ts'
import type { Logger } from './logger.ts'
import type { RedisClients } from './redis-connect.ts'

/** A bus, plus who to tell when messages may have been missed (the caches must then be flushed). */
export interface InvalidationTransport extends InvalidationBus {
  onResync(handler: (reason: string) => void): void
}

export interface InvalidationTransportDeps {
  db: Db
  /** The deployment's Redis connections (REDIS_URL), built by the composition root. */
  redis?: RedisClients
  redisPrefix: string
  /** The PostgreSQL server every instance listens on (DATABASE_URL without Redis) and the deployment's channel. */
  postgres?: { connectionString: string; channel: string }
  logger: Logger
  cleanups: Cleanups
  /** How long a start waits for a Redis that does not answer before it goes on without (see below). */
  redisStartWaitMs: number
  /** How often an instance compares its Redis generation with the deployment's. */
  redisGenerationCheckMs: number
  /** Pause before the LISTEN/NOTIFY listener reconnects. */
  listenerReconnectMs: number
}

/**
 * The transport of invalidations, chosen once, by deployment, from the clients the composition root built:
 *   Redis connections  → Redis pub/sub (publishing tombstones the shared cache entries first);
 *   a PostgreSQL server → LISTEN/NOTIFY on the deployment's channel;
 *   neither (embedded database, one process) → in-process.
 */
export async function invalidationTransport(deps: InvalidationTransportDeps): Promise<InvalidationTransport> {
  const { logger, cleanups } = deps
  const warn = (msg: string) => (err: unknown) => logger.warn(msg, { error: String((err as Error)?.message ?? err) })
  const resyncHandlers: Array<(reason: string) => void> = []
  const resync = (reason: string) => { for (const h of resyncHandlers) h(reason) }
  const onResync = (handler: (reason: string) => void) => { resyncHandlers.push(handler) }

  if (deps.redis) {
    const shared = redisSharedCache(deps.redis.commands, deps.redisPrefix)
    const bus = redisBus({
      redis: deps.redis.commands,
      subscriber: deps.redis.subscriber,
      prefix: deps.redisPrefix,
      keysOf: (m) => {
        const key = cacheKeyOf(m)
        return key ? [key] : []
      },
      tombstone: (keys) => shared.tombstone(keys),
      onResync: resync,
      checkMs: deps.redisGenerationCheckMs,
    })
    // Redis down at start must not keep the process from serving: wait a moment, then go on; the subscription
    // completes in the background when Redis answers, and what was cached meanwhile is dropped then.
    const subscribed = bus.start()
    const inTime = await Promise.race([subscribed.then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), deps.redisStartWaitMs).unref())])
    if (!inTime) {
      logger.warn('redis unavailable at start; serving without it, invalidation resumes when it answers')
      subscribed.then(() => resync('redis subscribed after start'), warn('redis subscription failed'))
    } else await subscribed.catch(warn('redis unavailable at start; invalidation resumes when it answers'))
    cleanups.unshift(() => bus.close())
    return Object.assign(bus, { onResync })
  }
  if (deps.postgres) {
    const bus = pgNotifyBus({
      connectionString: deps.postgres.connectionString,
      channel: deps.postgres.channel,
      query: (sql, params) => deps.db.query(sql, params),
      onResync: () => resync('listener reconnected'),
      onError: warn('invalidation listener lost its connection'),
      reconnectMs: deps.listenerReconnectMs,
    })
    await bus.start()
    cleanups.unshift(() => bus.close())
    return Object.assign(bus, { onResync })
  }
  return Object.assign(inProcessBus(), { onResync })
}
