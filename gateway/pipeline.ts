import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { ErrorCode } from '../core/error-codes.ts'
import { KeygateError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import type { Authenticator, Principal } from './authenticator.ts'
import type { ForwardedPolicy } from './forwarded-headers.ts'
import type { CorsStage } from './cors.ts'
import { sendProblem } from './problem.ts'
import { upstreamPath, type Router } from './router.ts'
import { authenticateForRoute } from './stage-authenticate.ts'
import { limitBody, readBodyFirst } from './stage-body-limit.ts'
import { extractCredential } from './stage-credential.ts'
import { forward } from './stage-forward.ts'
import { normalizePath } from './stage-path.ts'
import { sanitizeRequestHeaders, type StripList } from './stage-sanitize.ts'
import type { IdentityStamper } from './stage-sign-identity.ts'
import type { RouteSlots } from './route-slots.ts'
import type { StreamRegistry } from './stream-registry.ts'

/**
 * The request path of the data plane, in order:
 *   path → credential → CORS (preflights answered) → route → authenticate → body limit (read first on public routes) → sanitize headers →
 *   sign identity → forward.
 * Each stage is its own module; this file only wires them and turns denials into responses.
 */
export interface PipelineDeps {
  /** The current routes (a function, so a reload swaps them without restarting). */
  router: () => Router
  authenticators: readonly Authenticator[]
  stamper: IdentityStamper
  dispatcher: Dispatcher
  identityHeader: string
  /** Client headers dropped besides the reserved families (`KEYGATE_STRIP_HEADERS`). */
  stripHeaders?: StripList
  forwarded: ForwardedPolicy
  /** Open exchanges by credential, so a revocation can cut them. */
  streams: StreamRegistry
  /** In-flight exchanges per route, for routes with `max_concurrent`. */
  slots?: RouteSlots
  /** Answers CORS preflights and marks answers for allowed origins (see cors.ts). */
  cors?: CorsStage
  metrics: Metrics
  logger: Logger
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Reads the request id the client sent (when well formed) or makes one. */
export function requestIdOf(req: IncomingMessage): string {
  const inbound = req.headers['x-request-id']
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID()
}

/** Past this, a refused request's unread body is not read to its end: the connection closes instead. */
const DISCARD_MAX_BYTES = 64 * 1024

/**
 * Answers with the problem for `code`; returns the code, which the access log records. A large body the
 * client is still sending (chunked, or declared over 64 KiB) is not read to its end (a refused 1 GB upload
 * would otherwise be received and thrown away): the connection closes after the answer. A small one is read
 * and dropped, so the connection stays open and the client, still writing, never meets a reset before it
 * reads the answer.
 */
function deny(req: IncomingMessage, res: ServerResponse, requestId: string, code: ErrorCode): ErrorCode {
  if (!req.complete && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > DISCARD_MAX_BYTES)) res.shouldKeepAlive = false
  sendProblem(res, code, { instance: requestId, headers: { 'x-request-id': requestId } })
  return code
}

export function createPipeline(deps: PipelineDeps) {
  const { metrics, logger } = deps

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    // Every answer carries the request id: the problem responses through deny(), the upstream's through the
    // forward stage (set once with the other headers: a setHeader() here made Node merge them one by one).
    const requestId = requestIdOf(req)
    const method = req.method ?? 'GET'
    let routeName = 'none'
    let principal: Principal | null = null
    let upstreamMs: number | undefined
    let failure: ErrorCode | undefined
    let untrack: (() => void) | undefined

    try {
      const path = normalizePath(req.url)
      if (!path.ok) {
        failure = deny(req, res, requestId, path.code)
        return
      }
      const credential = extractCredential(req)
      const router = deps.router()
      const cors = deps.cors?.(req, res, router, path.path, requestId)
      if (cors?.answered) {
        routeName = cors.routeName
        failure = cors.code
        return
      }
      const route = router.match(path.path, method, req.headers.host)
      if (!route) {
        failure = deny(req, res, requestId, 'ROUTE_NOT_FOUND')
        return
      }
      routeName = route.name
      const release = deps.slots ? deps.slots.acquire(route) : undefined
      if (deps.slots && !release) {
        failure = deny(req, res, requestId, 'ROUTE_BUSY')
        return
      }
      if (release) res.once('close', release)

      const auth = await authenticateForRoute(route, credential, deps.authenticators, { clientAddress: deps.forwarded.clientAddress(req) })
      if (!auth.ok) {
        metrics.authFailures.inc({ code: auth.code })
        failure = deny(req, res, requestId, auth.code)
        return
      }
      principal = auth.principal

      const body = limitBody(req, route.max_body_bytes)
      if (!body.ok) {
        failure = deny(req, res, requestId, body.code)
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
          failure = deny(req, res, requestId, read.code)
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
      } else {
        socket.setTimeout(0)
      }

      const headers = sanitizeRequestHeaders(req, { identityHeader: deps.identityHeader, forwardAuthorization: route.forward_authorization, strip: deps.stripHeaders })
      headers.push('x-request-id', requestId, ...deps.forwarded.headers(req))
      if (principal) {
        headers.push(deps.identityHeader, deps.stamper.stamp(principal, route.audience, route.bind_request ? { method, prefix: upstreamPath(route, route.prefix) } : undefined))
        if (route.plain_identity_headers) {
          headers.push('x-user-id', principal.userId, 'x-username', principal.username, 'x-auth-method', principal.auth)
          if (principal.keyId) headers.push('x-api-key-id', principal.keyId)
        }
      }
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
      metrics.gatewayDuration.observe({ route: routeName }, (performance.now() - started) / 1000)

      const outcome = await forward(deps.dispatcher, res, {
        origin: router.origin(route),
        path: upstreamPath(route, path.path) + path.search,
        method,
        headers,
        body: upload,
        timeoutMs: route.timeout_ms,
        idleTimeoutMs: route.idle_timeout_ms,
        responseHeaders: ['x-request-id', requestId],
        onResponse: () => {
          if (awaitHeaders) req.off('end', awaitHeaders)
          socket.setTimeout(route.idle_timeout_ms)
          return track()
        },
      })
      upstreamMs = outcome.upstreamMs
      metrics.upstreamDuration.observe({ route: routeName }, outcome.upstreamMs / 1000)
      if (!outcome.ok) {
        if (body.exceeded()) {
          failure = deny(req, res, requestId, 'BODY_TOO_LARGE')
          return
        }
        metrics.upstreamErrors.inc({ route: routeName, code: outcome.code })
        if (outcome.code !== 'ABORTED') failure = deny(req, res, requestId, outcome.code)
      }
    } catch (err) {
      const code: ErrorCode = err instanceof KeygateError ? err.code : 'INTERNAL'
      if (code === 'INTERNAL') logger.error('request failed', { request_id: requestId, error: String((err as Error)?.message ?? err) })
      failure = deny(req, res, requestId, code)
    } finally {
      untrack?.()
      const status = res.headersSent ? res.statusCode : 0
      metrics.requests.inc({ route: routeName, method, status_class: `${Math.floor(status / 100)}xx`, auth: principal?.auth ?? 'none' })
      logger.info('request', {
        request_id: requestId,
        route: routeName,
        method,
        status,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        upstream_ms: upstreamMs === undefined ? undefined : Math.round(upstreamMs * 100) / 100,
        auth: principal?.auth ?? 'none',
        user_id: principal?.userId,
        key_id: principal?.keyId,
        code: failure,
      })
    }
  }
}
