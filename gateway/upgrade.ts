import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import httpProxy from 'http-proxy'
import { TUNABLES } from '../config/tunables.ts'
import { ERROR_CODES, type ErrorCode } from '../core/error-codes.ts'
import { KeygateError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { rawProblem } from '../core/problem.ts'
import type { Admission, RouteCheck } from './admission.ts'
import type { Principal } from './authenticator.ts'
import { requestIdOf } from './pipeline.ts'
import { upstreamPath, type Route } from './router.ts'
import { pushTraceHeaders, traceContextOf } from './trace-context.ts'
import type { StreamRegistry } from './stream-registry.ts'

/**
 * WebSocket upgrades: the same admission as the HTTP pipeline (`admission.ts`: path, credential, route,
 * authenticate, sanitize, forwarded, sign) decides at the handshake; this file keeps the handshake's own checks,
 * http-proxy, close frames and the access line. A denied handshake gets the usual
 * problem+json answer and the socket closes; an upstream that refuses the upgrade has its answer relayed and
 * the socket closes: there is never a raw tunnel that skipped authentication.
 */
export interface UpgradeDeps {
  admission: Admission
  streams: StreamRegistry
  metrics: Metrics
  logger: Logger
  /** The client's address as the gateway established it, for the access line. */
  clientAddress?: (req: IncomingMessage) => string
}

/** http-proxy's target: the origin, or with the upstream's TLS settings (private CA, client certificate) the parts of it with them. */
function proxyTarget(route: Route, origin: string): string | Record<string, string | undefined> {
  if (!route.tls || !origin.startsWith('https://')) return origin
  const url = new URL(origin)
  return { protocol: 'https:', host: url.hostname, hostname: url.hostname, port: url.port || '443', ca: route.tls.ca, cert: route.tls.cert, key: route.tls.key }
}

/** A WebSocket close frame (server to client, unmasked) with its status code. */
export function closeFrame(code: number): Buffer {
  return Buffer.from([0x88, 0x02, code >> 8, code & 0xff])
}

/** How long a client told to close (revocation, shutdown) may take before both legs are destroyed. */
export const CLOSE_TIMEOUT_MS = TUNABLES.websocket.closeTimeoutMs

function refuse(socket: Duplex, code: ErrorCode, requestId: string, headers?: Readonly<Record<string, string>>): void {
  socket.end(rawProblem(code, { instance: requestId, headers: { 'x-request-id': requestId, ...headers } }))
}

/** The upgrade's route check: the route must take WebSockets. */
const websocketsAllowed: RouteCheck<undefined> = (route) => (route.websockets ? undefined : 'WEBSOCKET_NOT_ALLOWED')

export function createUpgradeHandler(deps: UpgradeDeps) {
  const proxy = httpProxy.createProxyServer({ ws: true, xfwd: false, changeOrigin: false, proxyTimeout: TUNABLES.websocket.proxyTimeoutMs })
  proxy.on('error', (_err, req, target) => {
    const socket = target as Duplex & { bytesWritten?: number }
    // Nothing sent to the client yet: it gets a proper 502; otherwise the connection is simply cut.
    if (socket.writable && socket.bytesWritten === 0) refuse(socket, 'UPSTREAM_UNAVAILABLE', String(req.headers['x-request-id'] ?? ''))
    else socket.destroy()
  })

  // The upstream leg of each client socket. http-proxy pipes the two legs together but ends the upstream leg only
  // when the client's ends cleanly: a client destroyed (or one that ignores its close frame and is cut) would
  // leave the upstream leg open for ever. Each leg's close now closes the other.
  const upstreamOf = new WeakMap<Duplex, Duplex>()
  proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
    proxyReq.once('upgrade', (_res, upstream: Duplex) => {
      if (socket.destroyed) return upstream.destroy()
      upstreamOf.set(socket, upstream)
      socket.once('close', () => upstream.destroy())
      // A client told to close keeps its close timeout to read the close frame.
      upstream.once('close', () => { if (!socket.writableEnded) socket.destroy() })
    })
  })

  /**
   * Ends a proxied WebSocket from the gateway's side: the client's frames stop reaching the upstream at once, the
   * upstream's stop reaching the client, the client gets a close frame with `code`, the upstream leg ends; both
   * are destroyed after CLOSE_TIMEOUT_MS if the client ignores the close frame.
   */
  function cut(socket: Duplex, code: number): void {
    const upstream = upstreamOf.get(socket)
    if (upstream) {
      socket.unpipe(upstream)
      upstream.unpipe(socket)
      upstream.end()
    }
    socket.pause()
    socket.end(closeFrame(code))
    setTimeout(() => {
      socket.destroy()
      upstream?.destroy()
    }, CLOSE_TIMEOUT_MS).unref()
  }

  const open = new Set<Duplex>()

  async function handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const requestId = requestIdOf(req)
    const started = performance.now()
    const trace = traceContextOf(req)
    const client = deps.clientAddress?.(req)
    const target = req.url ?? ''
    let origin: string | undefined
    let refusedKeyId: string | undefined
    socket.on('error', () => socket.destroy())
    open.add(socket)
    socket.once('close', () => open.delete(socket))
    // One access line per handshake, like every request: 101 when it went upstream, else the refusal.
    let routeName = 'none'
    let status = 101
    let failure: ErrorCode | undefined
    let principal: Principal | null = null
    const deny = (code: ErrorCode, headers?: Readonly<Record<string, string>>) => {
      status = ERROR_CODES[code].status
      failure = code
      refuse(socket, code, requestId, headers)
    }
    try {
      // RFC 6455 §4.1: the opening handshake is a GET. Any other method would be relayed as a GET upstream.
      if (req.method !== 'GET') return deny('WEBSOCKET_METHOD_INVALID')
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return deny('WEBSOCKET_NOT_ALLOWED')
      const admitting = deps.admission.admit(req, 'GET', websocketsAllowed, undefined)
      const admitted = admitting instanceof Promise ? await admitting : admitting
      if (admitted.route) routeName = admitted.route.name
      if (!admitted.ok) {
        refusedKeyId = admitted.keyId
        if (admitted.principal) principal = admitted.principal
        return deny(admitted.code, admitted.headers)
      }
      const { route, router, credential } = admitted
      principal = admitted.principal
      const flat = deps.admission.headers(req, admitted, requestId)
      pushTraceHeaders(flat, trace)
      flat.push('connection', 'Upgrade', 'upgrade', 'websocket')
      const headers: Record<string, string> = {}
      for (let i = 0; i < flat.length; i += 2) headers[flat[i]!] = headers[flat[i]!] === undefined ? flat[i + 1]! : `${headers[flat[i]!]}, ${flat[i + 1]}`
      req.headers = headers
      req.url = upstreamPath(route, admitted.path) + admitted.search
      deps.metrics.requests.inc({ route: route.name, method: 'GET', status_class: '1xx', auth: principal?.auth ?? 'none' })
      const p = principal
      if (p && credential.kind === 'bearer') {
        // 1008: policy violation — the credential that opened this connection was revoked.
        const untrack = deps.streams.track(p, credential.value, () => cut(socket, 1008))
        socket.once('close', untrack)
      }
      origin = router.origin(route)
      proxy.ws(req, socket, head, { target: proxyTarget(route, origin) as string })
    } catch (err) {
      const code: ErrorCode = err instanceof KeygateError ? err.code : 'INTERNAL'
      if (code === 'INTERNAL') deps.logger.error('upgrade failed', { request_id: requestId, error: String((err as Error)?.message ?? err) })
      deny(code)
    } finally {
      deps.logger.info('request', {
        request_id: requestId,
        trace_id: trace.traceId,
        route: routeName,
        method: req.method ?? 'GET',
        path: target.split('?', 1)[0],
        status,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        upgrade: 'websocket',
        upstream: origin,
        client,
        user_agent: req.headers['user-agent'],
        auth: principal?.auth ?? 'none',
        user_id: principal?.userId,
        key_id: principal?.keyId ?? refusedKeyId,
        code: failure,
      })
    }
  }

  return {
    handle,
    /** Sends every open WebSocket a close frame with `code` (1001: going away) and ends it. */
    closeAll(code: number) {
      for (const socket of open) cut(socket, code)
    },
  }
}
