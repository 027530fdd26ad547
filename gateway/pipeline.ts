import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { TUNABLES } from '../config/tunables.ts'
import type { ErrorCode } from '../core/error-codes.ts'
import { KeygateError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { writeProblem } from '../core/problem.ts'
import type { Admission, RouteCheck } from './admission.ts'
import type { Principal } from './authenticator.ts'
import { upstreamPath } from './router.ts'
import type { CorsStage } from './cors.ts'
import { limitBody, readBodyFirst } from './stage-body-limit.ts'
import { forward } from './stage-forward.ts'
import type { RouteSlots } from './route-slots.ts'
import type { StreamRegistry } from './stream-registry.ts'
import { exchangeBytes } from './access-bytes.ts'
import { pushTraceHeaders, traceContextOf, type SpanRecorder } from './trace-context.ts'
import { causeLabel } from './upstream-failure.ts'
import type { Route } from './router.ts'
import { headerRecord } from './stage-rate-limit.ts'
import { requestMetrics, statusClassOf } from './request-metrics.ts'

/**
 * The request path of the data plane, in order:
 *   [CORS: preflights answered, allowed origins marked] → admission (path → credential → route → route slot →
 *   authenticate) → body limit (read first on public routes) → admission's headers (sanitize → forwarded →
 *   sign identity) → forward.
 * Admission is shared with the WebSocket upgrade (`admission.ts`); this file keeps what is HTTP's own: CORS,
 * the route's concurrency slot, the body limit, the timeouts, forwarding with undici, and the access line.
 */
export interface PipelineDeps {
  admission: Admission
  dispatcher: Dispatcher
  /** Open exchanges by credential, so a revocation can cut them. */
  streams: StreamRegistry
  /** In-flight exchanges per route, for routes with `max_concurrent`. */
  slots?: RouteSlots
  /** Answers CORS preflights and marks answers for allowed origins (see cors.ts). */
  cors?: CorsStage
  metrics: Metrics
  logger: Logger
  /** The client's address as the gateway established it (the one the login limit uses), for the access line. */
  clientAddress?: (req: IncomingMessage) => string
  /** Exports each request as a span (OpenTelemetry, when configured); absent: no cost. */
  spans?: SpanRecorder
  /** The dispatcher of a route whose upstream has its own TLS settings (`ca_file`, client certificate); else `dispatcher`. */
  dispatcherFor?: (route: Route) => Dispatcher | undefined
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Reads the request id the client sent (when well formed) or makes one. */
export function requestIdOf(req: IncomingMessage): string {
  const inbound = req.headers['x-request-id']
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID()
}

/** The upstream's answer's own headers: the request id, then the rate limit's (`[name, value, …]`). */
function withRequestId(requestId: string, list: readonly string[]): string[] {
  const out = ['x-request-id', requestId]
  for (let i = 0; i < list.length; i++) out.push(list[i]!)
  return out
}

/** Past this, a refused request's unread body is not read to its end: the connection closes instead. */
const DISCARD_MAX_BYTES = TUNABLES.http.discardMaxBytes

/**
 * Answers with the problem for `code`; returns the code, which the access log records. A large body the
 * client is still sending (chunked, or declared over 64 KiB) is not read to its end (a refused 1 GB upload
 * would otherwise be received and thrown away): the connection closes after the answer. A small one is read
 * and dropped, so the connection stays open and the client, still writing, never meets a reset before it
 * reads the answer.
 */
function deny(req: IncomingMessage, res: ServerResponse, requestId: string, code: ErrorCode, headers: Record<string, string> = {}): ErrorCode {
  if (!req.complete && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > DISCARD_MAX_BYTES)) res.shouldKeepAlive = false
  writeProblem(res, code, { instance: requestId, headers: { 'x-request-id': requestId, ...headers } })
  return code
}

/** `deny` after admission: the answer carries the route's rate-limit headers (`[name, value, …]`) as well. */
function denyLimited(req: IncomingMessage, res: ServerResponse, requestId: string, code: ErrorCode, limited: readonly string[] | undefined): ErrorCode {
  return deny(req, res, requestId, code, limited && headerRecord(limited))
}

/** The access line's fields, in the order it has always written them (log pipelines may read them by position). */
const ACCESS_FIELDS = [
  'request_id', 'trace_id', 'route', 'method', 'path', 'status', 'duration_ms', 'upstream_ms', 'upstream', 'client', 'user_agent',
  'bytes_in', 'bytes_out', 'auth', 'user_id', 'key_id', 'code', 'cause', 'cause_detail',
] as const

export function createPipeline(deps: PipelineDeps) {
  const { metrics, logger, admission } = deps
  const seriesOf = requestMetrics(metrics)
  const accessLine = logger.template('info', 'request', ACCESS_FIELDS)
  // HTTP's route check: a slot of the route, given back when the response closes.
  const slots = deps.slots
  const takeSlot: RouteCheck<ServerResponse> | undefined = slots && ((route, res) => {
    const release = slots.acquire(route)
    if (!release) return 'ROUTE_BUSY'
    res.once('close', release)
    return undefined
  })

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const trace = traceContextOf(req)
    // Read now: once the answer is sent the request may have let go of its connection.
    const connection = req.socket
    const client = deps.clientAddress?.(req)
    // Every answer carries the request id: the problem responses through deny(), the upstream's through the
    // forward stage (set once with the other headers: a setHeader() here made Node merge them one by one).
    const requestId = requestIdOf(req)
    const method = req.method ?? 'GET'
    let routeName = 'none'
    let principal: Principal | null = null
    let upstreamMs: number | undefined
    let failure: ErrorCode | undefined
    let untrack: (() => void) | undefined
    let origin: string | undefined
    let cause: string | undefined
    let causeDetail: string | undefined
    let refusedKeyId: string | undefined

    try {
      const cors = deps.cors?.(req, res, requestId)
      if (cors?.answered) {
        routeName = cors.routeName
        failure = cors.code
        return
      }
      // A warm credential is admitted synchronously: no promise to wait for (see `admission.ts`).
      const admitting = admission.admit(req, method, takeSlot, res)
      const admitted = admitting instanceof Promise ? await admitting : admitting
      if (!admitted.ok) {
        if (admitted.route) routeName = admitted.route.name
        refusedKeyId = admitted.keyId
        if (admitted.principal) principal = admitted.principal
        failure = deny(req, res, requestId, admitted.code, admitted.allow ? { allow: admitted.allow.join(', ') } : admitted.headers)
        return
      }
      const { route, router, credential } = admitted
      routeName = route.name
      // The rate limit's headers go on the gateway's own answers after admission too (413, 408, 502, 504).
      const limited = admitted.responseHeaders
      principal = admitted.principal

      const body = limitBody(req, route.max_body_bytes)
      if (!body.ok) {
        failure = denyLimited(req, res, requestId, body.code, limited)
        return
      }
      let upload = body.body
      const readFirst = upload !== null && route.read_body_first
      if (readFirst) {
        req.socket.setTimeout(route.idle_timeout_ms)
        const read = await readBodyFirst(upload!, route.body_timeout_ms, body.exceeded)
        if (!read.ok) {
          if (read.code === 'ABORTED') {
            req.destroy()
            return
          }
          // What is left of a slow body is not waited for: the connection closes after the answer.
          res.shouldKeepAlive = false
          res.once('finish', () => setTimeout(() => req.socket.destroy(), 1000).unref())
          failure = denyLimited(req, res, requestId, read.code, limited)
          return
        }
        upload = read.body
      }
      // Silence on the connection is bounded by idle_timeout_ms while the body flows either way; the wait for
      // the upstream's response headers is bounded by timeout_ms alone (the forward stage's headers timeout).
      const socket = req.socket
      let awaitHeaders: (() => void) | undefined
      const streamingUpload = upload !== null && !readFirst
      if (streamingUpload) {
        socket.setTimeout(route.idle_timeout_ms)
        awaitHeaders = () => socket.setTimeout(0)
        req.once('end', awaitHeaders)
      } else if (socket.timeout !== 0) {
        // Node's server already cleared the keep-alive timeout when the request arrived: usually nothing to do.
        socket.setTimeout(0)
      }

      const headers = admission.headers(req, admitted, requestId)
      pushTraceHeaders(headers, trace)
      // A revocation cuts what is streaming under the credential: the upload while it flows, the response once
      // it flows. Not the wait in between, which is where the admin call that revoked it sits.
      const p = principal
      const track = p && credential.kind === 'bearer' ? () => deps.streams.track(p, credential.value, () => res.destroy()) : () => undefined
      if (streamingUpload) {
        const untrackUpload = track()
        if (untrackUpload) {
          untrack = untrackUpload
          req.once('end', untrackUpload)
        }
      }
      const series = seriesOf(routeName)
      series.gatewayDuration.observe((performance.now() - started) / 1000)

      origin = router.origin(route)
      const outcome = await forward((route.tls && deps.dispatcherFor?.(route)) || deps.dispatcher, res, {
        origin,
        path: upstreamPath(route, admitted.path) + admitted.search,
        method,
        headers,
        body: upload,
        timeoutMs: route.timeout_ms,
        idleTimeoutMs: route.idle_timeout_ms,
        responseHeaders: limited ? withRequestId(requestId, limited) : ['x-request-id', requestId],
        onResponse: () => {
          if (awaitHeaders) req.off('end', awaitHeaders)
          socket.setTimeout(route.idle_timeout_ms)
          return track()
        },
      })
      upstreamMs = outcome.upstreamMs
      series.upstreamDuration.observe(outcome.upstreamMs / 1000)
      if (!outcome.ok) {
        if (body.exceeded()) {
          failure = denyLimited(req, res, requestId, 'BODY_TOO_LARGE', limited)
          return
        }
        metrics.upstreamErrors.inc({ route: routeName, code: outcome.code })
        if (outcome.code !== 'ABORTED') {
          cause = outcome.failure.cause
          causeDetail = outcome.failure.detail
          metrics.upstreamFailures.inc({ route: routeName, status: outcome.code === 'UPSTREAM_TIMEOUT' ? '504' : '502', cause: causeLabel(cause) })
          failure = denyLimited(req, res, requestId, outcome.code, limited)
        }
      }
    } catch (err) {
      const code: ErrorCode = err instanceof KeygateError ? err.code : 'INTERNAL'
      if (code === 'INTERNAL') logger.error('request failed', { request_id: requestId, error: String((err as Error)?.message ?? err) })
      failure = deny(req, res, requestId, code)
    } finally {
      untrack?.()
      const status = res.headersSent ? res.statusCode : 0
      const statusClass = statusClassOf(status)
      const ended = performance.now()
      const series = seriesOf(routeName)
      series.requests(method, statusClass, principal?.auth ?? 'none').inc()
      series.requestDuration(statusClass).observe((ended - started) / 1000)
      const url = req.url ?? ''
      const query = url.indexOf('?')
      const path = query < 0 ? url : url.slice(0, query)
      const bytes = exchangeBytes(connection)
      // In the order of ACCESS_FIELDS.
      accessLine([
        requestId,
        trace.traceId,
        routeName,
        method,
        path,
        status,
        Math.round((ended - started) * 100) / 100,
        upstreamMs === undefined ? undefined : Math.round(upstreamMs * 100) / 100,
        origin,
        client,
        req.headers['user-agent'],
        bytes.in,
        bytes.out,
        principal?.auth ?? 'none',
        principal?.userId,
        principal?.keyId ?? refusedKeyId,
        failure,
        cause,
        causeDetail,
      ])
      deps.spans?.record(trace, {
        method,
        route: routeName,
        path,
        status,
        code: failure,
        cause,
        upstream: origin,
        startMs: performance.timeOrigin + started,
        endMs: performance.timeOrigin + ended,
      })
    }
  }
}
