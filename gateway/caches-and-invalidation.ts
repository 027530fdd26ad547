import type { EnvConfig } from '../config/schema.ts'
import { redisSharedCache } from '../core/cache-redis.ts'
import { credentialCache } from '../core/credential-cache.ts'
import type { Db } from '../core/db.ts'
import { KeygateError } from '../core/errors.ts'
import { inProcessBus, type Invalidation, type InvalidationBus } from '../core/invalidation.ts'
import { invalidationOutbox } from '../core/invalidation-outbox.ts'
import { pgNotifyBus } from '../core/invalidation-pg.ts'
import { redisBus } from '../core/invalidation-redis.ts'
import { connectRedis, parseRedisUrl, type RedisClient } from '../core/redis-connect.ts'
import type { KeyRecord } from '../core/key-store.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { invalidationChannel } from '../core/open-database.ts'
import type { SessionRecord } from '../core/session-store.ts'
import { keyCacheKey } from './authenticator-api-key.ts'
import { sessionCacheKey } from './authenticator-jwt.ts'
import type { Cleanups } from '../core/cleanups.ts'

/** How often an instance publishes the invalidations owed in the outbox (see below). */
const OUTBOX_DRAIN_MS = 1000

/**
 * The credential caches and the invalidation bus of one instance, by deployment:
 *   REDIS_URL set      → in-process LRU → Redis → PostgreSQL; invalidation over Redis pub/sub;
 *   DATABASE_URL only  → in-process LRU → PostgreSQL; invalidation over LISTEN/NOTIFY;
 *   embedded database  → in-process LRU → PGlite; one process, an in-process bus.
 * Every message drops the matching in-process entries; the metrics count lookups by layer and the delay
 * from publication to the moment this instance dropped the entry.
 */
export async function cachesAndInvalidation(deps: { env: EnvConfig; db: Db; metrics: Metrics; logger: Logger; cleanups: Cleanups }) {
  const { env, db, metrics, logger, cleanups } = deps
  const warn = (msg: string) => (err: unknown) => logger.warn(msg, { error: String((err as Error)?.message ?? err) })
  const cacheKeyOf = (m: Invalidation) => (m.kind === 'key' ? keyCacheKey(m.keyHash) : m.kind === 'session' ? sessionCacheKey(m.sessionId) : undefined)

  const redisTarget = env.REDIS_URL ? parseRedisUrl(env.REDIS_URL) : undefined
  let redis: RedisClient | undefined
  let shared: ReturnType<typeof redisSharedCache> | undefined
  if (redisTarget) {
    // Commands fail at once while Redis is down (no offline queue): lookups go to PostgreSQL instead of waiting.
    redis = connectRedis(redisTarget, 'commands')
    redis.on('error', () => {})
    const r = redis
    cleanups.unshift(async () => { r.disconnect() })
    shared = redisSharedCache(redis, env.KEYGATE_REDIS_PREFIX)
  }
  const options = {
    max: env.KEYGATE_CACHE_MAX,
    ttlMs: env.KEYGATE_CACHE_TTL_MS,
    negativeTtlMs: env.KEYGATE_CACHE_NEGATIVE_TTL_MS,
    shared,
    onLookup: (layer: string, result: string) => metrics.cacheLookups.inc({ layer, result }),
  }
  const keyCache = credentialCache<KeyRecord>(options)
  const sessionCache = credentialCache<SessionRecord>(options)
  const flush = (reason: string) => {
    logger.warn('flushing the credential caches: invalidation messages may have been missed', { reason })
    metrics.cacheFlushes.inc({ reason })
    keyCache.clear()
    sessionCache.clear()
  }
  const observe = (m: Invalidation, sentAt: number) => metrics.invalidationDelay.observe({ kind: m.kind }, Math.max(0, Date.now() - sentAt) / 1000)

  const inProcess = inProcessBus()
  let bus: InvalidationBus = inProcess
  if (redisTarget && redis && shared) {
    const subscriber = connectRedis(redisTarget, 'subscriber')
    subscriber.on('error', () => {})
    const s = shared
    const rb = redisBus({
      redis,
      subscriber,
      prefix: env.KEYGATE_REDIS_PREFIX,
      keysOf: (m) => {
        const key = cacheKeyOf(m)
        return key ? [key] : []
      },
      tombstone: (keys) => s.tombstone(keys),
      onResync: flush,
      onMessage: observe,
    })
    // Redis down at start must not keep the gateway from serving: wait a moment, then go on; the subscription
    // completes in the background when Redis answers, and what was cached meanwhile is dropped then.
    const subscribed = rb.start()
    const inTime = await Promise.race([subscribed.then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), 2000).unref())])
    if (!inTime) {
      logger.warn('redis unavailable at start; serving without it, invalidation resumes when it answers')
      subscribed.then(() => flush('redis subscribed after start'), warn('redis subscription failed'))
    } else await subscribed.catch(warn('redis unavailable at start; invalidation resumes when it answers'))
    cleanups.unshift(() => rb.close())
    bus = rb
  } else if (env.DATABASE_URL) {
    const pg = pgNotifyBus({
      connectionString: env.DATABASE_URL,
      channel: invalidationChannel(env),
      query: (sql, params) => db.query(sql, params),
      onResync: () => flush('listener reconnected'),
      onError: warn('invalidation listener lost its connection'),
    })
    pg.onMessage = observe
    await pg.start()
    cleanups.unshift(() => pg.close())
    bus = pg
  }
  const published = bus.publish.bind(bus)
  // What could not be published is owed to the other instances: written to the outbox in the database (beside
  // the change it announces), which every instance drains while its transport answers, so the others drop it
  // then (and the shared cache gets its tombstone) instead of at the end of a cache lifetime, even if this
  // instance stops first. Held in memory only when not even the database takes it.
  const outbox = invalidationOutbox(db)
  const unsaved: Invalidation[] = []
  let busy = false
  const drain = async () => {
    if (busy) return
    busy = true
    try {
      while (unsaved.length > 0) {
        await published(unsaved[0]!)
        unsaved.shift()
        metrics.invalidations.inc({ direction: 'sent' })
      }
      const sent = await outbox.drain(async (m) => {
        await published(m)
        metrics.invalidations.inc({ direction: 'sent' })
      })
      if (sent) logger.info('owed invalidations published', { count: sent })
    } catch {
      // The transport (or the database) is still away: the next tick tries again.
    } finally {
      busy = false
    }
  }
  if (bus !== inProcess) {
    const draining = setInterval(() => void drain(), OUTBOX_DRAIN_MS)
    draining.unref()
    cleanups.unshift(async () => clearInterval(draining))
  }
  bus.publish = async (m) => {
    try {
      await published(m)
    } catch (err) {
      await outbox.add(m).catch(() => { unsaved.push(m) })
      // The change is committed; this instance at least forgets it now. The caller must learn that the others
      // were not told yet (they will be, from the outbox, once the transport answers).
      keyCache.invalidate(m, cacheKeyOf)
      sessionCache.invalidate(m, cacheKeyOf)
      metrics.invalidations.inc({ direction: 'failed' })
      logger.error('invalidation could not be published', { kind: m.kind, error: String((err as Error)?.message ?? err) })
      throw new KeygateError('INVALIDATION_FAILED', 'invalidation could not be published', { cause: err })
    }
    metrics.invalidations.inc({ direction: 'sent' })
  }
  bus.subscribe((m) => {
    metrics.invalidations.inc({ direction: 'received' })
    keyCache.invalidate(m, cacheKeyOf)
    sessionCache.invalidate(m, cacheKeyOf)
  })
  return { keyCache, sessionCache, bus, redis }
}
