import type { EnvConfig } from '../config/schema.ts'
import { TUNABLES } from '../config/tunables.ts'
import type { Cleanups } from './cleanups.ts'
import type { Db } from './db.ts'
import { invalidationPublisher, type InvalidationPublisher } from './invalidation-publisher.ts'
import { invalidationTransport, type InvalidationTransport } from './invalidation-transport.ts'
import type { Logger } from './logger.ts'
import type { Metrics } from './metrics.ts'
import { invalidationChannel } from './open-database.ts'
import type { RedisClients } from './redis-connect.ts'

/**
 * The invalidation of a deployment as every composition root wires it (the gateway, the admin API on its own,
 * the CLI): the transport chosen once from the clients the root built (`redis` when REDIS_URL is set, else
 * LISTEN/NOTIFY on DATABASE_URL's server, else in-process), and the publisher on it with the tunables of
 * `config/tunables.ts`. Long-running roots call `publisher.start()` to drain the outbox.
 */
export async function openInvalidation(deps: {
  env: Pick<EnvConfig, 'DATABASE_URL' | 'DATABASE_SCHEMA' | 'KEYGATE_REDIS_PREFIX'>
  db: Db
  redis: RedisClients | undefined
  logger: Logger
  cleanups: Cleanups
  metrics?: Pick<Metrics, 'invalidations'>
  beforePublish?(): void
}): Promise<{ transport: InvalidationTransport; publisher: InvalidationPublisher }> {
  const { env, db, logger } = deps
  const t = TUNABLES.invalidation
  const transport = await invalidationTransport({
    db, redis: deps.redis, redisPrefix: env.KEYGATE_REDIS_PREFIX, logger, cleanups: deps.cleanups,
    postgres: env.DATABASE_URL ? { connectionString: env.DATABASE_URL, channel: invalidationChannel(env) } : undefined,
    redisStartWaitMs: t.redisStartWaitMs, redisGenerationCheckMs: t.redisGenerationCheckMs, listenerReconnectMs: t.listenerReconnectMs,
  })
  const publisher = invalidationPublisher({ db, bus: transport, metrics: deps.metrics, logger, drainMs: t.outboxDrainMs, settleMs: t.outboxSettleMs, beforePublish: deps.beforePublish })
  deps.cleanups.unshift(async () => publisher.stop())
  return { transport, publisher }
}
