import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { seriesCounter, seriesHistogram } from './metric-series.ts'
import { VERSION } from './version.ts'

/**
 * Every metric Keygate exports, declared once. Labels are bounded: route names, methods, status classes,
 * auth methods and error codes, never a key id, a user or a raw path.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'keygate_' })
  const registers = [registry]
  return {
    registry,
    // The metrics every request updates keep per-label-set series folded in when read (metric-series.ts).
    requests: seriesCounter({
      name: 'keygate_requests_total',
      help: 'Requests handled by the gateway',
      labelNames: ['route', 'method', 'status_class', 'auth'] as const,
      registers,
    }),
    gatewayDuration: seriesHistogram({
      name: 'keygate_gateway_duration_seconds',
      help: 'Time spent in the gateway before the request went upstream (auth, signing)',
      labelNames: ['route'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers,
    }),
    upstreamDuration: seriesHistogram({
      name: 'keygate_upstream_duration_seconds',
      help: 'Time from sending a request upstream to its response headers',
      labelNames: ['route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
      registers,
    }),
    authFailures: new Counter({ name: 'keygate_auth_failures_total', help: 'Denied credentials by code', labelNames: ['code'] as const, registers }),
    upstreamErrors: new Counter({ name: 'keygate_upstream_errors_total', help: 'Upstream failures by route and code', labelNames: ['route', 'code'] as const, registers }),
    // Every warm request counts an in-process hit: series folded in when read, as for the request metrics.
    cacheLookups: seriesCounter({ name: 'keygate_cache_lookups_total', help: 'Credential cache lookups by layer and result', labelNames: ['layer', 'result'] as const, registers }),
    streamsClosed: new Counter({ name: 'keygate_streams_closed_total', help: 'Open exchanges (WebSocket, SSE, uploads) closed because their credential was revoked or reached its deadline', labelNames: ['reason'] as const, registers }),
    cacheFlushes: new Counter({ name: 'keygate_cache_flushes_total', help: 'Whole in-process cache flushes after invalidation messages may have been missed', labelNames: ['reason'] as const, registers }),
    invalidationDelay: new Histogram({
      name: 'keygate_invalidation_delay_seconds',
      help: 'From publication of an invalidation to the moment this instance dropped the entry',
      labelNames: ['kind'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    rateLimited: new Counter({ name: 'keygate_rate_limited_total', help: 'Requests refused with 429 RATE_LIMITED, by route', labelNames: ['route'] as const, registers }),
    rateLimitFailOpen: new Counter({ name: 'keygate_rate_limit_fail_open_total', help: 'Requests let through uncounted because the rate limiter\'s Redis failed', registers }),
    rateLimitRedisDuration: new Histogram({
      name: 'keygate_rate_limit_redis_duration_seconds',
      help: 'Round trip of the rate limiter\'s script to Redis',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers,
    }),
    invalidations: new Counter({ name: 'keygate_invalidations_total', help: 'Invalidation messages by direction', labelNames: ['direction'] as const, registers }),
    decisions: new Counter({ name: 'keygate_decisions_total', help: 'Answers of the forward-auth decision endpoint by route and code (`ok` when allowed)', labelNames: ['route', 'code'] as const, registers }),
    requestDuration: seriesHistogram({
      name: 'keygate_request_duration_seconds',
      help: 'End-to-end time of a request in the gateway, from its headers to the end of the answer',
      labelNames: ['route', 'status_class'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
      registers,
    }),
    upstreamFailures: new Counter({
      name: 'keygate_upstream_failures_total',
      help: 'Upstream exchanges that failed before a response, by the answer (502 unavailable, 504 timeout) and its cause',
      labelNames: ['route', 'status', 'cause'] as const,
      registers,
    }),
    buildInfo: buildInfo(registers),
    routeReloads: new Counter({ name: 'keygate_route_reloads_total', help: 'Route file reloads by result (success, failure)', labelNames: ['result'] as const, registers }),
    tlsCertificateExpiry: new Gauge({ name: 'keygate_tls_certificate_expiry_timestamp_seconds', help: 'When the TLS listener\'s certificate in force expires, Unix seconds (absent without TLS)', aggregator: 'min', registers }),
    routesLoadedAt: new Gauge({ name: 'keygate_routes_last_load_timestamp_seconds', help: 'When the routes in force were loaded (start-up or the last successful reload), Unix seconds', aggregator: 'min', registers }),
  }
}

/** `keygate_build_info{version, node} 1`: which build answers, for dashboards and alerts joining on it. */
function buildInfo(registers: Registry[]): Gauge<'version' | 'node'> {
  const gauge = new Gauge({ name: 'keygate_build_info', help: 'The running build: 1, labelled with its version and Node.js version', labelNames: ['version', 'node'] as const, aggregator: 'max', registers })
  gauge.set({ version: VERSION, node: process.versions.node }, 1)
  return gauge
}

export type Metrics = ReturnType<typeof createMetrics>
