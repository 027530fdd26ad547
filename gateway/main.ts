import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createServer, type Server } from 'node:http'
import { pathToFileURL } from 'node:url'
import { AggregatorRegistry } from 'prom-client'
import { Agent } from 'undici'
import { createAdminApp } from '../admin-api/app.ts'
import { ADMIN_AUDIENCE } from '../admin-api/identity.ts'
import { loadConfig, withoutEmpty, type KeygateConfig } from '../config/load.ts'
import { systemClock, type Clock } from '../core/clock.ts'
import { clientAddressProof } from '../core/client-address-proof.ts'
import { controlPlane } from '../core/control-plane.ts'
import { ConfigError } from '../core/errors.ts'
import { httpLimits } from '../core/http-guard.ts'
import { closeServer, listen } from '../core/http-listen.ts'
import { identitySigner, type IdentitySigner } from '../core/identity-signer.ts'
import { keyStore } from '../core/key-store.ts'
import { keyExpirySweeper } from '../core/key-expiry-sweeper.ts'
import { keyUsageRecorder } from '../core/key-usage-recorder.ts'
import { jsonLogger, type Logger } from '../core/logger.ts'
import { createMetrics } from '../core/metrics.ts'
import { createMetricsServer } from '../core/metrics-server.ts'
import { migrate, migrationsApplied } from '../core/migrate.ts'
import { openDatabase } from '../core/open-database.ts'
import { sessionStore } from '../core/session-store.ts'
import { signingKeyStore, parseConfiguredKeys } from '../core/signing-key-store.ts'
import type { SigningKey } from '../core/signing-keys.ts'
import { createConversationService } from '../examples/demo-conversations.ts'
import { createDocumentService } from '../examples/demo-documents.ts'
import { remoteKeySource, type KeySource } from '../verify/index.ts'
import { apiKeyAuthenticator } from './authenticator-api-key.ts'
import { jwtAuthenticator } from './authenticator-jwt.ts'
import { corsStage } from './cors.ts'
import { createPipeline } from './pipeline.ts'
import { createRouter, resolveRoutes } from './router.ts'
import { routeReloader } from './route-reloader.ts'
import { runPrimary } from './cluster-primary.ts'
import { cachesAndInvalidation } from './caches-and-invalidation.ts'
import { createGatewayServer } from './server.ts'
import { forwardedPolicy } from './forwarded-headers.ts'
import { streamRegistry } from './stream-registry.ts'
import { createUpgradeHandler } from './upgrade.ts'
import { unknownKeyLimiter } from './unknown-key-limiter.ts'
import { routeSlots } from './route-slots.ts'
import { identityStamper } from './stage-sign-identity.ts'
import { stripList } from './stage-sanitize.ts'
import { closeAll, type Cleanups } from '../core/cleanups.ts'
import { stopOnSignals } from '../core/signals.ts'

/** A running Keygate: the gateway, its admin API and (by default) the demo services, in one process. */
export interface RunningKeygate {
  readonly url: string
  readonly port: number
  readonly metricsPort: number
  readonly logger: Logger
  /** Reloads the route file; false (old routes kept, problems logged) when it is invalid. */
  reload(): boolean
  /** Drains: readiness fails, the listener closes, WebSockets get 1001, in-flight requests finish (up to the grace period). */
  close(): Promise<void>
}

/**
 * The composition root: builds every real client and server from the environment.
 * @throws ConfigError listing every configuration problem
 */
export async function startKeygate(rawEnv: NodeJS.ProcessEnv = process.env, options: { write?: (line: string) => void; clock?: Clock } = {}): Promise<RunningKeygate> {
  const config = loadConfig(withoutEmpty(rawEnv))
  const env = config.env
  const logger = jsonLogger({ level: env.LOG_LEVEL, write: options.write, base: { service: 'keygate' } })
  const clock = options.clock ?? systemClock

  const db = await openDatabase(env)
  const cleanups: Cleanups = [() => db.close()]
  try {
    const applied = await migrate(db)
    if (applied.length) logger.info('migrations applied', { migrations: applied })

    // Signing keys: from configuration (fixed), or generated and rotated in the database (reloaded on every
    // rotation message, and every 30 s in case one was missed).
    const configuredKeys = env.KEYGATE_SIGNING_KEY ?? (env.KEYGATE_SIGNING_KEY_FILE ? readFileSync(env.KEYGATE_SIGNING_KEY_FILE, 'utf8') : undefined)
    const makeSigner = (keys: SigningKey[]) => identitySigner({ keys, issuer: env.KEYGATE_ISSUER, ttlSec: env.KEYGATE_IDENTITY_TTL, clock })
    let signer: IdentitySigner
    let reloadSigningKeys = async () => {}
    if (configuredKeys) {
      signer = makeSigner(parseConfiguredKeys(configuredKeys))
    } else {
      await signingKeyStore.ensure(db, env.KEYGATE_SIGNING_ALG)
      const published = () => signingKeyStore.published(db, new Date(clock.now()), env.KEYGATE_IDENTITY_TTL + 60)
      signer = makeSigner(await published())
      let kids = signer.jwks().keys.map((k) => k.kid).join()
      reloadSigningKeys = async () => {
        const keys = await published()
        const now = keys.map((k) => k.kid).join()
        if (now === kids) return
        kids = now
        signer = makeSigner(keys)
        logger.info('identity signing keys reloaded', { signing_kid: keys[0]!.kid, published: keys.length })
      }
      const timer = setInterval(() => { reloadSigningKeys().catch((err: unknown) => logger.warn('signing key reload failed', { error: String(err) })) }, 30_000)
      timer.unref()
      cleanups.unshift(async () => clearInterval(timer))
    }
    const metrics = createMetrics()

    const { keyCache, sessionCache, bus, redis } = await cachesAndInvalidation({ env, db, metrics, logger, cleanups })
    bus.subscribe((m) => {
      if (m.kind === 'signing-keys') reloadSigningKeys().catch((err: unknown) => logger.warn('signing key reload failed', { error: String(err) }))
    })

    const { tokens, format, adminDeps } = await controlPlane({ env, db, clock, bus, redis, logger })

    // Services Keygate runs in-process on free loopback ports, named by `internal:<name>` upstream URLs.
    const internal = new Map<string, string>()
    const internalServers: Server[] = []
    const wanted = new Set(Object.values(config.file.upstreams).flatMap((u) => ([] as string[]).concat(u.url)).filter((u) => u.startsWith('internal:')).map((u) => u.slice('internal:'.length)))
    const startInternal = async (name: string, server: Server) => {
      internalServers.push(server)
      internal.set(name, `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`)
    }
    // The in-process admin API listens on loopback, where any local process can call it: it believes the client
    // address only with a proof made with this process's secret.
    const addressProof = clientAddressProof({ clock })
    if (wanted.has('admin')) {
      const app = createAdminApp({
        ...adminDeps, logger: logger.child({ component: 'admin-api' }), clientAddressProof: addressProof,
        identity: { keys: () => signer.jwks().keys, audience: ADMIN_AUDIENCE, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER, now: clock.now },
      })
      await startInternal('admin', createServer(app))
    }
    // The demos verify like any upstream: against the gateway's published key set, fetched over HTTP.
    let jwksUrl = ''
    let remote: KeySource | undefined
    const published: KeySource = { get: (kid) => (remote ??= remoteKeySource(jwksUrl)).get(kid) }
    if (env.KEYGATE_DEMOS) {
      const verify = { keys: published, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER, now: clock.now }
      if (wanted.has('demo-conversations')) await startInternal('demo-conversations', createConversationService({ ...verify, audience: 'conversations' }))
      if (wanted.has('demo-documents')) await startInternal('demo-documents', createDocumentService({ ...verify, audience: 'documents' }))
    }
    cleanups.unshift(async () => { await Promise.all(internalServers.map((s) => closeServer(s, 1000))) })

    const resolved = resolveRoutes(config.file, config.filePath, internal)
    if (!resolved.routes) throw new ConfigError(resolved.problems)
    const routes = resolved.routes
    let router = createRouter(routes)

    const sweeper = keyExpirySweeper({ db, clock, bus, onError: (err) => logger.warn('key expiry sweep failed', { error: String((err as Error)?.message ?? err) }) })
    sweeper.start()
    cleanups.unshift(async () => sweeper.stop())

    const usage = keyUsageRecorder({ db, clock, onError: (err) => logger.warn('last_used_at flush failed', { error: String(err) }) })
    cleanups.unshift(() => usage.close())
    const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
    // By the time this runs every client exchange has ended (or was cut at the grace deadline); what undici still
    // holds (a connection attempt to an upstream that never completes its handshake) is not waited for.
    cleanups.unshift(() => dispatcher.destroy())

    let draining = false
    const authenticators = [
      apiKeyAuthenticator({ format, cache: keyCache, findByHash: (hash) => keyStore.findByHash(db, hash), clock, recordUse: (id) => usage.record(id), unknownKeys: unknownKeyLimiter({ max: env.KEYGATE_UNKNOWN_KEY_LOOKUPS, clock }) }),
      jwtAuthenticator({ tokens, cache: sessionCache, findSession: (sid) => sessionStore.find(db, sid), clock }),
    ]
    const streams = streamRegistry({
      recheck: async (credential) => {
        const result = await authenticators.find((a) => a.accepts(credential))?.authenticate(credential)
        return result?.ok ? result.principal : undefined
      },
      onClosed: ({ reason }) => metrics.streamsClosed.inc({ reason }),
      now: clock.now,
    })
    bus.subscribe((m) => { void streams.revoked(m) })
    const shared = {
      router: () => router,
      authenticators,
      stamper: identityStamper({ signer: () => signer, clock }),
      identityHeader: env.KEYGATE_IDENTITY_HEADER,
      stripHeaders: stripList(env.KEYGATE_STRIP_HEADERS),
      forwarded: forwardedPolicy(env.KEYGATE_TRUSTED_PROXIES, addressProof),
      streams,
      metrics,
      logger,
    }
    const handle = createPipeline({ ...shared, dispatcher, slots: routeSlots(), cors: corsStage(env.KEYGATE_CORS_ORIGINS) })
    const upgrades = createUpgradeHandler(shared)
    const server = createGatewayServer({
      handle,
      upgrade: upgrades.handle,
      jwks: () => signer.jwks(),
      ready: async () => !draining && (await migrationsApplied(db)),
      limits: httpLimits(env),
      draining: () => draining,
      onRefused: (code, err) => logger.info('request refused', { code, reason: err?.code ?? code }),
    })
    const port = await listen(server, env.PORT, env.HOST)
    jwksUrl = `http://${env.HOST === '0.0.0.0' || env.HOST === '::' ? '127.0.0.1' : env.HOST}:${port}/.well-known/jwks.json`

    // A cluster worker leaves /metrics to the primary, which sums every worker's registry.
    if (rawEnv.KEYGATE_CLUSTER_WORKER === '1') {
      // Constructing one installs the worker's answer to the primary's metrics requests.
      new AggregatorRegistry()
      AggregatorRegistry.setRegistries([metrics.registry])
    }
    const metricsServer = createMetricsServer(metrics.registry)
    const metricsPort = rawEnv.KEYGATE_CLUSTER_WORKER === '1' ? env.METRICS_PORT : await listen(metricsServer, env.METRICS_PORT, env.METRICS_HOST)
    cleanups.unshift(() => closeServer(metricsServer, 1000))

    // Routes reload on SIGHUP (see the entry point) and when the file changes; a bad file keeps the old routes.
    const { reload } = routeReloader({ filePath: config.filePath, rawEnv, internal, apply: (next) => { router = createRouter(next) }, logger, watch: env.KEYGATE_CONFIG_WATCH, cleanups })

    const url = `http://127.0.0.1:${port}`
    logger.info('keygate listening', { url: `http://${env.HOST}:${port}`, metrics_port: metricsPort, database: db.kind, routes: routes.length, admin_api: internal.get('admin') ?? null })
    let closing: Promise<void> | undefined
    return {
      url,
      port,
      metricsPort,
      logger,
      reload: () => reload('signal'),
      close() {
        closing ??= (async () => {
          draining = true
          // WebSockets have no natural end: they are told the server is going away (1001) at once.
          upgrades.closeAll(1001)
          // Readiness fails and every answer closes its connection; a load balancer checking /readyz moves
          // new requests elsewhere during the delay, after which nothing new arrives when the listener closes.
          if (env.KEYGATE_DRAIN_DELAY_MS > 0) await new Promise((r) => setTimeout(r, env.KEYGATE_DRAIN_DELAY_MS))
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

function fatal(err: unknown): never {
  process.stderr.write(`keygate: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let config: KeygateConfig | undefined
  try {
    config = loadConfig(withoutEmpty(process.env))
  } catch (err) {
    fatal(err)
  }
  const workers = config.env.KEYGATE_WORKERS === 'auto' ? availableParallelism() : config.env.KEYGATE_WORKERS
  if (workers > 1 && cluster.isPrimary) {
    runPrimary(config, workers, jsonLogger({ level: config.env.LOG_LEVEL, base: { service: 'keygate', role: 'primary' } }))
  } else {
    startKeygate().then((keygate) => {
      process.on('SIGHUP', () => keygate.reload())
      stopOnSignals(keygate)
    }, fatal)
  }
}
