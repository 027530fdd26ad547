import { pathToFileURL } from 'node:url'
import { loadEnv, withoutEmpty } from '../config/load.ts'
import { systemClock, type Clock } from '../core/clock.ts'
import { controlPlane } from '../core/control-plane.ts'
import { closeServer, listen } from '../core/http-listen.ts'
import { jsonLogger, type Logger } from '../core/logger.ts'
import { createMetrics } from '../core/metrics.ts'
import { createMetricsServer } from '../core/metrics-server.ts'
import { migrate, migrationsApplied } from '../core/migrate.ts'
import { openDatabase } from '../core/open-database.ts'
import { openInvalidation } from '../core/invalidation-setup.ts'
import { openRedis } from '../core/redis-connect.ts'
import { remoteKeySource } from '@keygate/verify'
import { createAdminApp } from './app.ts'
import { ADMIN_AUDIENCE } from './identity.ts'
import { createAdminServer } from './server.ts'
import { httpLimits } from '../core/http-guard.ts'
import { closeAll, type Cleanups } from '../core/cleanups.ts'
import { stopOnSignals } from '../core/signals.ts'

/** The admin API running as its own process, behind the gateways (`npm run admin-api`). */
export interface RunningAdminApi {
  readonly url: string
  readonly port: number
  readonly metricsPort: number
  readonly logger: Logger
  /** Drains: readiness fails, the listener closes, in-flight requests finish (up to the grace period). */
  close(): Promise<void>
}

/** Settings the admin API cannot run on its own without (`test/docs/compose.test.ts` holds docker-compose.yml to them). */
export const ADMIN_API_REQUIRED = [
  { name: 'DATABASE_URL', why: 'by the admin API run on its own: it shares the gateways\' PostgreSQL server (the embedded database serves one process)' },
  { name: 'KEYGATE_JWKS_URL', why: 'by the admin API run on its own: the gateway\'s key set (http://gateway:8000/.well-known/jwks.json), against which it verifies the identity header' },
] as const

/**
 * The admin API's composition root when it runs apart from the gateway. It shares the gateways' PostgreSQL
 * server (DATABASE_URL is required), publishes invalidations on their transport (Redis pub/sub with REDIS_URL,
 * else LISTEN/NOTIFY) and drains the outbox with them, and takes the caller's identity only from the gateway's signed identity header, verified
 * against the key set at KEYGATE_JWKS_URL (required). Login, refresh and registration arrive without one:
 * they are public routes in the gateway's route file.
 * @throws ConfigError listing every configuration problem
 */
export async function startAdminApi(rawEnv: NodeJS.ProcessEnv = process.env, options: { write?: (line: string) => void; clock?: Clock } = {}): Promise<RunningAdminApi> {
  const env = loadEnv(withoutEmpty(rawEnv), ADMIN_API_REQUIRED)
  const logger = jsonLogger({ level: env.LOG_LEVEL, write: options.write, base: { service: 'keygate-admin-api' } })
  const clock = options.clock ?? systemClock

  const db = await openDatabase(env)
  const cleanups: Cleanups = [() => db.close()]
  try {
    const applied = await migrate(db)
    if (applied.length) logger.info('migrations applied', { migrations: applied })
    const metrics = createMetrics()
    // No credential cache here: only the publisher, on the gateways' transport, and its share of the outbox drain.
    const redis = openRedis(env.REDIS_URL, cleanups)
    const { publisher } = await openInvalidation({ env, db, redis, logger, cleanups, metrics })
    publisher.start()
    const { adminDeps } = await controlPlane({ env, db, clock, publisher, redis: redis?.commands, logger })

    const jwksUrl = env.KEYGATE_JWKS_URL!
    const app = createAdminApp({
      ...adminDeps, logger: logger.child({ component: 'admin-api' }),
      // Fetched on the first request that carries an identity (a gateway is up by then), not at start: a
      // failed fetch would make every identity wait out the key source's cooldown.
      identity: { keys: remoteKeySource(jwksUrl), audience: ADMIN_AUDIENCE, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER, now: clock.now },
    })
    let draining = false
    const server = createAdminServer({ app, ready: async () => !draining && (await migrationsApplied(db)), limits: httpLimits(env) })
    const port = await listen(server, env.PORT, env.HOST)
    const metricsServer = createMetricsServer(metrics.registry)
    cleanups.unshift(() => closeServer(metricsServer, 1000))
    const metricsPort = await listen(metricsServer, env.METRICS_PORT, env.METRICS_HOST)

    logger.info('admin api listening', { url: `http://${env.HOST}:${port}`, metrics_port: metricsPort, database: db.kind, invalidation: redis ? 'redis' : 'postgres', jwks_url: jwksUrl })
    let closing: Promise<void> | undefined
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      metricsPort,
      logger,
      close() {
        closing ??= (async () => {
          draining = true
          await closeServer(server, env.KEYGATE_SHUTDOWN_GRACE_MS)
          await closeAll(cleanups)
        })()
        return closing
      },
    }
  } catch (err) {
    await closeAll(cleanups)
    throw err
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  startAdminApi().then(stopOnSignals, (err: unknown) => {
    process.stderr.write(`keygate admin-api: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
