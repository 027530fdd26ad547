import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { TUNABLES } from '../config/tunables.ts'
import type { ErrorCode } from '../core/error-codes.ts'
import { KeygateError } from '../core/errors.ts'
import type { LogFields, Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { writeProblem } from '../core/problem.ts'
import type { Admission, Admitted, Refused, RouteCheck } from './admission.ts'
import type { Principal } from './authenticator.ts'
import { upstreamPath } from './router.ts'
import type { CorsStage } from './cors.ts'
import { limitBody, readBodyFirst, type ReadFirstResult } from './stage-body-limit.ts'
import { forward, type ForwardOutcome, type ForwardRequest } from './stage-forward.ts'
import type { RouteSlots } from './route-slots.ts'
import type { StreamRegistry } from './stream-registry.ts'
import { exchangeBytes } from './access-bytes.ts'
import { pushTraceHeaders, traceContextOf, type SpanRecorder, type TraceContext } from './trace-context.ts'
import { causeLabel } from './upstream-failure.ts'
import type { Route } from './router.ts'
import { headerRecord } from './stage-rate-limit.ts'
import { requestMetrics, statusClassOf, type RouteSeries } from './request-metrics.ts'

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

/** What every exchange of one pipeline shares: its dependencies, resolved once. */
interface Shared {
  readonly deps: PipelineDeps
  readonly seriesOf: (routeName: string) => RouteSeries
  readonly accessLine: (values: ReadonlyArray<LogFields[string]>) => void
  readonly takeSlot: RouteCheck<ServerResponse> | undefined
}

export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => void {
  // HTTP's route check: a slot of the route, given back when the response closes.
  const slots = deps.slots
  const shared: Shared = {
    deps,
    seriesOf: requestMetrics(deps.metrics),
    accessLine: deps.logger.template('info', 'request', ACCESS_FIELDS),
    takeSlot: slots && ((route, res) => {
      const release = slots.acquire(route)
      if (!release) return 'ROUTE_BUSY'
      res.once('close', release)
      return undefined
    }),
  }
  return (req, res) => new Exchange(shared, req, res).start()
}

/**
 * One request on its way through the pipeline, and what the access line says of it. Each step continues
 * synchronously when it can (a warm credential is admitted without a promise) and through a callback when it waits
 * (a credential lookup, a body read first, the upstream's answer); every step's fault ends in `fault`, and
 * `finish` writes the metrics and the access line once. The exchange is also the forward stage's request
 * (`ForwardRequest`): no options object, promise or closure per request for it.
 */
class Exchange implements ForwardRequest {
  private readonly started = performance.now()
  private readonly trace: TraceContext
  /** Read now: once its body has been read, or the answer sent, the request may have let go of its connection. */
  private readonly connection: Socket
  private readonly client: string | undefined
  private readonly requestId: string
  readonly method: string
  private routeName = 'none'
  private principal: Principal | null = null
  private upstreamMs: number | undefined
  private failure: ErrorCode | undefined
  private untrack: (() => void) | undefined
  private cause: string | undefined
  private causeDetail: string | undefined
  private refusedKeyId: string | undefined
  private finished = false
  // Set once admitted.
  private admittedAs: Admitted | undefined
  private limited: readonly string[] | undefined
  /** Whether the body went over the route's limit while it streamed (set with the body). */
  private exceeded: (() => boolean) | undefined
  /** The route's metric series, found once the route is known. */
  private series: RouteSeries | undefined
  private awaitHeaders: (() => void) | undefined
  // The forward stage's request (`ForwardRequest`).
  origin = ''
  path = ''
  headers: string[] = []
  body: Readable | null = null
  timeoutMs = 0
  idleTimeoutMs = 0
  responseHeaders: readonly string[] = []
  /**
   * Whether the socket's idle timer must be armed when the response starts: the upload changed it, or it was not
   * known to be off (a connection's first request).
   */
  private rearm = false

  constructor(
    private readonly shared: Shared,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.trace = traceContextOf(req)
    this.connection = req.socket
    this.client = shared.deps.clientAddress?.(req)
    // Every answer carries the request id: the problem responses through deny(), the upstream's through the
    // forward stage (set once with the other headers: a setHeader() here made Node merge them one by one).
    this.requestId = requestIdOf(req)
    this.method = req.method ?? 'GET'
  }

  start(): void {
    try {
      const { deps, takeSlot } = this.shared
      const cors = deps.cors?.(this.req, this.res, this.requestId)
      if (cors?.answered) {
        this.routeName = cors.routeName
        this.failure = cors.code
        return this.finish()
      }
      // A warm credential is admitted synchronously: no promise to wait for (see `admission.ts`).
      const admitting = deps.admission.admit(this.req, this.method, takeSlot, this.res)
      if (admitting instanceof Promise) admitting.then((a) => this.admitted(a), (err: unknown) => this.fault(err))
      else this.admitted(admitting)
    } catch (err) {
      this.fault(err)
    }
  }

  private admitted(admitted: Admitted | Refused): void {
    try {
      const { req, res, requestId } = this
      if (!admitted.ok) {
        if (admitted.route) this.routeName = admitted.route.name
        this.refusedKeyId = admitted.keyId
        if (admitted.principal) this.principal = admitted.principal
        this.failure = deny(req, res, requestId, admitted.code, admitted.allow ? { allow: admitted.allow.join(', ') } : admitted.headers)
        return this.finish()
      }
      const { route } = admitted
      this.admittedAs = admitted
      this.routeName = route.name
      // The rate limit's headers go on the gateway's own answers after admission too (413, 408, 502, 504).
      this.limited = admitted.responseHeaders
      this.principal = admitted.principal

      const body = limitBody(req, route.max_body_bytes)
      if (!body.ok) {
        this.failure = denyLimited(req, res, requestId, body.code, this.limited)
        return this.finish()
      }
      this.exceeded = body.exceeded
      const upload = body.body
      if (upload !== null && route.read_body_first) {
        this.connection.setTimeout(route.idle_timeout_ms)
        readBodyFirst(upload, route.body_timeout_ms, body.exceeded).then((read) => this.bodyRead(read), (err: unknown) => this.fault(err))
        return
      }
      this.send(upload, upload !== null)
    } catch (err) {
      this.fault(err)
    }
  }

  private bodyRead(read: ReadFirstResult): void {
    try {
      if (!read.ok) {
        if (read.code === 'ABORTED') {
          this.req.destroy()
          return this.finish()
        }
        // What is left of a slow body is not waited for: the connection closes after the answer.
        const connection = this.connection
        this.res.shouldKeepAlive = false
        this.res.once('finish', () => setTimeout(() => connection.destroy(), 1000).unref())
        this.failure = denyLimited(this.req, this.res, this.requestId, read.code, this.limited)
        return this.finish()
      }
      this.send(read.body, false)
    } catch (err) {
      this.fault(err)
    }
  }

  /** Sends the request upstream; `streamingUpload`: the body flows from the client as it is sent. */
  private send(upload: Readable | null, streamingUpload: boolean): void {
    const { req, shared: { deps } } = this
    const admitted = this.admittedAs!
    const { route, router } = admitted
    // Silence on the connection is bounded by idle_timeout_ms while the body flows either way; the wait for
    // the upstream's response headers is bounded by timeout_ms alone (the forward stage's headers timeout).
    const socket = this.connection
    if (streamingUpload) {
      socket.setTimeout(route.idle_timeout_ms)
      const awaitHeaders = () => socket.setTimeout(0)
      this.awaitHeaders = awaitHeaders
      req.once('end', awaitHeaders)
      this.rearm = true
    } else if (socket.timeout !== 0) {
      // Node's server already cleared the keep-alive timeout when the request arrived: usually nothing to do.
      socket.setTimeout(0)
      this.rearm = true
    }

    const headers = deps.admission.headers(req, admitted, this.requestId)
    pushTraceHeaders(headers, this.trace)
    if (streamingUpload) {
      // A revocation cuts the upload while it flows (and the response once it flows: `onResponse`).
      const untrackUpload = this.track()
      if (untrackUpload) {
        this.untrack = untrackUpload
        req.once('end', untrackUpload)
      }
    }
    this.series = this.shared.seriesOf(this.routeName)
    this.series.gatewayDuration.observe((performance.now() - this.started) / 1000)

    this.origin = router.origin(route)
    this.path = upstreamPath(route, admitted.path) + admitted.search
    this.headers = headers
    this.body = upload
    this.timeoutMs = route.timeout_ms
    this.idleTimeoutMs = route.idle_timeout_ms
    this.responseHeaders = this.limited ? withRequestId(this.requestId, this.limited) : ['x-request-id', this.requestId]
    forward((route.tls && deps.dispatcherFor?.(route)) || deps.dispatcher, this.res, this)
  }

  /**
   * A revocation cuts what is streaming under the credential: the upload while it flows, the response once it
   * flows. Not the wait in between, which is where the admin call that revoked it sits.
   */
  private track(): (() => void) | undefined {
    const { principal, res } = this
    const credential = this.admittedAs!.credential
    return principal && credential.kind === 'bearer' ? this.shared.deps.streams.track(principal, credential.value, () => res.destroy()) : undefined
  }

  /** The forward stage: the response started streaming to the client. */
  onResponse(eventStream: boolean): (() => void) | undefined {
    if (this.awaitHeaders) this.req.off('end', this.awaitHeaders)
    // The client's silence while the response flows: bounded by idle_timeout_ms once the client stops reading
    // (`onBackpressure`), or at once for an event stream, or when the upload left the timer changed; the
    // upstream's silence is undici's body timeout.
    if (this.rearm || eventStream) this.connection.setTimeout(this.idleTimeoutMs)
    return this.track()
  }

  /** The forward stage: the client is not reading what the upstream sends. */
  onBackpressure(): void {
    const socket = this.connection
    if (socket.timeout !== this.idleTimeoutMs) socket.setTimeout(this.idleTimeoutMs)
  }

  /** The forward stage's outcome. */
  onOutcome(outcome: ForwardOutcome): void {
    // Already answered: a fault thrown on the way to the dispatch was.
    if (this.finished) return
    try {
      const { req, res, requestId, shared: { deps } } = this
      this.upstreamMs = outcome.upstreamMs
      this.series!.upstreamDuration.observe(outcome.upstreamMs / 1000)
      if (!outcome.ok) {
        if (this.exceeded?.()) {
          this.failure = denyLimited(req, res, requestId, 'BODY_TOO_LARGE', this.limited)
          return this.finish()
        }
        deps.metrics.upstreamErrors.inc({ route: this.routeName, code: outcome.code })
        if (outcome.code !== 'ABORTED') {
          this.cause = outcome.failure.cause
          this.causeDetail = outcome.failure.detail
          deps.metrics.upstreamFailures.inc({ route: this.routeName, status: outcome.code === 'UPSTREAM_TIMEOUT' ? '504' : '502', cause: causeLabel(outcome.failure.cause) })
          this.failure = denyLimited(req, res, requestId, outcome.code, this.limited)
        }
      }
      this.finish()
    } catch (err) {
      this.fault(err)
    }
  }

  /** A fault in any step: its code when it has one, else INTERNAL (logged); then the access line. */
  private fault(err: unknown): void {
    const code: ErrorCode = err instanceof KeygateError ? err.code : 'INTERNAL'
    // After the access line (a fault while writing it) it is only logged, never thrown into the event loop.
    if (code === 'INTERNAL' || this.finished) this.shared.deps.logger.error('request failed', { request_id: this.requestId, error: String((err as Error)?.message ?? err) })
    if (this.finished) return
    try {
      this.failure = deny(this.req, this.res, this.requestId, code)
    } finally {
      this.finish()
    }
  }

  /** The exchange ended (answered, refused, failed): its metrics and its access line, once. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.untrack?.()
    const { req, res, shared, principal, started, trace } = this
    const status = res.headersSent ? res.statusCode : 0
    const statusClass = statusClassOf(status)
    const ended = performance.now()
    const series = this.series ?? shared.seriesOf(this.routeName)
    series.requests(this.method, statusClass, principal?.auth ?? 'none').inc()
    series.requestDuration(statusClass).observe((ended - started) / 1000)
    const url = req.url ?? ''
    const query = url.indexOf('?')
    const path = query < 0 ? url : url.slice(0, query)
    const bytes = exchangeBytes(this.connection)
    const origin = this.origin || undefined
    // In the order of ACCESS_FIELDS.
    shared.accessLine([
      this.requestId,
      trace.traceId,
      this.routeName,
      this.method,
      path,
      status,
      Math.round((ended - started) * 100) / 100,
      this.upstreamMs === undefined ? undefined : Math.round(this.upstreamMs * 100) / 100,
      origin,
      this.client,
      req.headers['user-agent'],
      bytes.in,
      bytes.out,
      principal?.auth ?? 'none',
      principal?.userId,
      principal?.keyId ?? this.refusedKeyId,
      this.failure,
      this.cause,
      this.causeDetail,
    ])
    shared.deps.spans?.record(trace, {
      method: this.method,
      route: this.routeName,
      path,
      status,
      code: this.failure,
      cause: this.cause,
      upstream: origin,
      startMs: performance.timeOrigin + started,
      endMs: performance.timeOrigin + ended,
    })
  }
}
