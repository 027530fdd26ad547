import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { pathToFileURL } from 'node:url'
import { AggregatorRegistry } from 'prom-client'
import { Agent } from 'undici'
import { loadConfig, withoutEmpty, type KeygateConfig } from '../config/load.ts'
import { TUNABLES } from '../config/tunables.ts'
import { systemClock, type Clock } from '../core/clock.ts'
import { clientAddressProof } from '../core/client-address-proof.ts'
import { controlPlane } from '../core/control-plane.ts'
import { ConfigError } from '../core/errors.ts'
import { httpLimits } from '../core/http-guard.ts'
import { closeServer, listen } from '../core/http-listen.ts'
import { invalidationFeed } from '../core/invalidation-feed.ts'
import { openInvalidation } from '../core/invalidation-setup.ts'
import { keyStore } from '../core/key-store.ts'
import { keyExpirySweeper } from '../core/key-expiry-sweeper.ts'
import { keyUsageRecorder } from '../core/key-usage-recorder.ts'
import { jsonLogger, scrub, type Logger } from '../core/logger.ts'
import { createMetrics } from '../core/metrics.ts'
import { createMetricsServer } from '../core/metrics-server.ts'
import { migrate, migrationsApplied } from '../core/migrate.ts'
import { openDatabase } from '../core/open-database.ts'
import { openRedis } from '../core/redis-connect.ts'
import { batchLoader } from '../core/batch-loader.ts'
import { sessionStore } from '../core/session-store.ts'
import { apiKeyAuthenticator } from './authenticator-api-key.ts'
import { jwtAuthenticator } from './authenticator-jwt.ts'
import { createAdmission } from './admission.ts'
import { corsStage } from './cors.ts'
import { createPipeline } from './pipeline.ts'
import { createDecision } from './decide.ts'
import { createRouter, resolveRoutes } from './router.ts'
import { routeReloader } from './route-reloader.ts'
import { runPrimary } from './cluster-primary.ts'
import { credentialCaches } from './credential-caches.ts'
import { createGatewayServer } from './server.ts'
import { forwardedPolicy } from './forwarded-headers.ts'
import { startInternalServices } from './internal-services.ts'
import { signingKeySource } from './signing-key-source.ts'
import { streamRegistry } from './stream-registry.ts'
import { createUpgradeHandler } from './upgrade.ts'
import { rateLimiting } from './rate-limiting.ts'
import { unknownKeyLimiter } from './unknown-key-limiter.ts'
import { routeSlots } from './route-slots.ts'
import { identityStamper } from './stage-sign-identity.ts'
import { stripList } from './stage-sanitize.ts'
import { closeAll, type Cleanups } from '../core/cleanups.ts'
import { stopOnSignals } from '../core/signals.ts'
import { VERSION } from '../core/version.ts'
import type { Server as TlsServer } from 'node:tls'
import { readServerCertificate, watchServerCertificate } from './tls-certificate.ts'
import { upstreamDispatchers } from './upstream-dispatchers.ts'
import type { SpanRecorder } from './trace-context.ts'

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

    const signing = await signingKeySource({ env, db, clock, logger, cleanups })
    const metrics = createMetrics()

    // Invalidation: the transport chosen once from the clients built here; the publisher (with its outbox drain)
    // for what this process revokes, the feed for what it caches.
    const redis = openRedis(env.REDIS_URL, cleanups)
    const { transport, publisher } = await openInvalidation({
      env, db, redis, logger, cleanups, metrics,
      // A test hook: the process dies between a commit and its publish, as a crash would have it.
      beforePublish: rawEnv.KEYGATE_TEST_CRASH_BEFORE_PUBLISH === '1' ? () => process.kill(process.pid, 'SIGKILL') : undefined,
    })
    publisher.start()
    const caches = credentialCaches({ env, redis: redis?.commands, metrics })

    const { tokens, format, adminDeps } = await controlPlane({ env, db, clock, publisher, redis: redis?.commands, logger })
    const addressProof = clientAddressProof({ clock })
    const services = await startInternalServices({ config, adminDeps, addressProof, signer: signing.signer, clock, logger, cleanups })
    const internal = services.internal

    const resolved = resolveRoutes(config.file, config.filePath, internal)
    if (!resolved.routes) throw new ConfigError(resolved.problems)
    const tlsFiles = env.KEYGATE_TLS_CERT_FILE && env.KEYGATE_TLS_KEY_FILE ? { certFile: env.KEYGATE_TLS_CERT_FILE, keyFile: env.KEYGATE_TLS_KEY_FILE } : undefined
    const certificate = tlsFiles && readServerCertificate(tlsFiles.certFile, tlsFiles.keyFile)
    if (certificate && !certificate.certificate) throw new ConfigError(certificate.problems)
    const routes = resolved.routes
    let router = createRouter(routes)

    const sweeper = keyExpirySweeper({ clock, publisher, intervalMs: TUNABLES.keys.expirySweepMs, onError: (err) => logger.warn('key expiry sweep failed', { error: String((err as Error)?.message ?? err) }) })
    sweeper.start()
    cleanups.unshift(async () => sweeper.stop())

    const usage = keyUsageRecorder({ db, clock, intervalMs: TUNABLES.keys.usageFlushMs, onError: (err) => logger.warn('last_used_at flush failed', { error: String(err) }) })
    cleanups.unshift(() => usage.close())
    const dispatcher = new Agent({ keepAliveTimeout: TUNABLES.upstream.keepAliveMs, connections: TUNABLES.upstream.connectionsPerOrigin })
    // By the time this runs every client exchange has ended (or was cut at the grace deadline); what undici still
    // holds (a connection attempt to an upstream that never completes its handshake) is not waited for.
    cleanups.unshift(() => dispatcher.destroy())
    // Upstreams with their own CA or client certificate get pools of their own.
    const tlsPools = upstreamDispatchers({ keepAliveTimeout: TUNABLES.upstream.keepAliveMs, connections: TUNABLES.upstream.connectionsPerOrigin })
    cleanups.unshift(() => tlsPools.destroy())
    // OpenTelemetry export: the SDK is imported only when a collector is configured.
    let spans: SpanRecorder | undefined
    if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
      const { otlpSpanRecorder } = await import('./tracing-otlp.ts')
      const recorder = otlpSpanRecorder({ endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME, version: VERSION })
      spans = recorder
      // Runs after the listener closed: the last spans are sent before the process ends.
      cleanups.unshift(() => recorder.close().catch((err: unknown) => logger.warn('span export failed at shutdown', { error: String((err as Error)?.message ?? err) })))
    }

    let draining = false
    const authenticators = [
      apiKeyAuthenticator({ format, cache: caches.keyCache, findByHash: batchLoader({ loadMany: (hashes) => keyStore.findByHashes(db, hashes), maxInFlight: Math.min(TUNABLES.caches.keyLookupsInFlight, env.DATABASE_POOL_SIZE), maxBatch: TUNABLES.caches.keyLookupBatchMax }), clock, recordUse: (id) => usage.record(id), unknownKeys: unknownKeyLimiter({ max: env.KEYGATE_UNKNOWN_KEY_LOOKUPS, clock }) }),
      jwtAuthenticator({ tokens, cache: caches.sessionCache, findSession: (sid) => sessionStore.find(db, sid), clock }),
    ]
    const streams = streamRegistry({
      recheck: async (credential) => {
        const result = await authenticators.find((a) => a.accepts(credential))?.authenticate(credential)
        return result?.ok ? result.principal : undefined
      },
      onClosed: ({ reason }) => metrics.streamsClosed.inc({ reason }),
      now: clock.now,
    })
    // Everything a revocation does here, in this order: the caches forget the credential first, so the open
    // streams it concerns are re-checked against the store, not against a cached copy.
    invalidationFeed(transport, { metrics, logger }).listen({
      message(m) {
        caches.invalidate(m)
        if (m.kind === 'signing-keys') signing.reload().catch((err: unknown) => logger.warn('signing key reload failed', { error: String(err) }))
        void streams.revoked(m)
      },
      resync: () => caches.clear(),
    })
    const forwarded = forwardedPolicy(env.KEYGATE_TRUSTED_PROXIES, addressProof)
    const rateLimit = rateLimiting({ env, db, redis: redis?.commands, clock, metrics, logger, cleanups })
    const admission = createAdmission({
      router: () => router,
      authenticators,
      stamper: identityStamper({ signer: signing.signer, clock }),
      identityHeader: env.KEYGATE_IDENTITY_HEADER,
      stripHeaders: stripList(env.KEYGATE_STRIP_HEADERS),
      forwarded,
      metrics,
      rateLimit,
    })
    const handle = createPipeline({
      admission, streams, metrics, logger, dispatcher, slots: routeSlots(), cors: corsStage(env.KEYGATE_CORS_ORIGINS, () => router),
      clientAddress: (req) => forwarded.clientAddress(req), spans, dispatcherFor: (route) => tlsPools.for(route),
    })
    const upgrades = createUpgradeHandler({ admission, streams, metrics, logger, clientAddress: (req) => forwarded.clientAddress(req) })
    const decide = createDecision({ admission, identityHeader: env.KEYGATE_IDENTITY_HEADER, forwarded, cacheSec: env.KEYGATE_DECISION_CACHE_SEC, identityTtlSec: () => signing.signer().ttlSec, clock, metrics, logger })
    const server = createGatewayServer({
      handle,
      decide,
      upgrade: upgrades.handle,
      jwks: () => signing.signer().jwks(),
      ready: async () => !draining && (await migrationsApplied(db)),
      limits: httpLimits(env),
      draining: () => draining,
      onRefused: (code, err) => logger.info('request refused', { code, reason: err?.code ?? code }),
      tls: certificate?.certificate,
    })
    const certificates = tlsFiles && certificate?.certificate
      ? watchServerCertificate({ ...tlsFiles, server: server as unknown as TlsServer, initial: certificate.certificate, logger, cleanups, watch: env.KEYGATE_CONFIG_WATCH, onLoaded: (c) => metrics.tlsCertificateExpiry.set(Date.parse(c.notAfter) / 1000) })
      : undefined
    const port = await listen(server, env.PORT, env.HOST)
    // Over TLS the in-process demos read the keys in process (they need not trust the listener's certificate).
    services.setJwksUrl(tlsFiles ? '' : `http://${env.HOST === '0.0.0.0' || env.HOST === '::' ? '127.0.0.1' : env.HOST}:${port}/.well-known/jwks.json`)

    // A cluster worker leaves /metrics to the primary, which sums every worker's registry.
    if (rawEnv.KEYGATE_CLUSTER_WORKER === '1') {
      // Constructing one installs the worker's answer to the primary's metrics requests.
      new AggregatorRegistry()
      AggregatorRegistry.setRegistries([metrics.registry])
    }
    const metricsServer = createMetricsServer(metrics.registry)
    const metricsPort = rawEnv.KEYGATE_CLUSTER_WORKER === '1' ? env.METRICS_PORT : await listen(metricsServer, env.METRICS_PORT, env.METRICS_HOST)
    cleanups.unshift(() => closeServer(metricsServer, TUNABLES.shutdown.internalCloseMs))

    // Routes reload on SIGHUP (see the entry point) and when the file changes; a bad file keeps the old routes.
    const { reload } = routeReloader({ filePath: config.filePath, rawEnv, internal, apply: (next) => { router = createRouter(next); tlsPools.retain(next) }, logger, watch: env.KEYGATE_CONFIG_WATCH, cleanups, metrics })

    const scheme = tlsFiles ? 'https' : 'http'
    const url = `${scheme}://127.0.0.1:${port}`
    logger.info('keygate listening', { version: VERSION, url: `${scheme}://${env.HOST}:${port}`, tls_not_after: tlsFiles ? certificate?.certificate?.notAfter : undefined, otlp: env.OTEL_EXPORTER_OTLP_ENDPOINT ? true : undefined, pid: process.pid, metrics_port: metricsPort, database: db.kind, routes: routes.length, admin_api: internal.get('admin') ?? null })
    let closing: Promise<void> | undefined
    return {
      url,
      port,
      metricsPort,
      logger,
      reload: () => {
        certificates?.reload('signal')
        return reload('signal')
      },
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

/** A start-up that failed, as one JSON line on stderr (a log collector reads it like any other line). */
function fatal(err: unknown): never {
  process.stderr.write(`${fatalLine(err)}\n`)
  process.exit(1)
}

export function fatalLine(err: unknown, now: Date = new Date()): string {
  const problems = err instanceof ConfigError ? err.problems : undefined
  const code = (err as { code?: unknown } | null)?.code
  return scrub(JSON.stringify({
    time: now.toISOString(),
    level: 'fatal',
    msg: problems ? 'invalid configuration' : 'keygate failed to start',
    service: 'keygate',
    version: VERSION,
    error: err instanceof Error ? err.message : String(err),
    ...(typeof code === 'string' ? { code } : {}),
    ...(problems ? { problems } : {}),
  }))
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
