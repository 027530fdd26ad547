import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { ErrorCode } from '../core/error-codes.ts'
import { answerClientErrors, refuseConnection, requestRefusal, serverOptions, type HttpLimits } from '../core/http-guard.ts'
import { writeProblem } from '../core/problem.ts'
import { VERSION } from '../core/version.ts'

/**
 * The gateway's HTTP server: its own endpoints (`/healthz`, `/readyz`, `/.well-known/jwks.json`, and under the
 * reserved `/_keygate/` the decision endpoint `/_keygate/decide`, any method) and, for everything else, the
 * pipeline. Nothing under `/_keygate/` is ever routed upstream.
 */
export interface GatewayServerDeps {
  handle(req: IncomingMessage, res: ServerResponse): void
  /** The forward-auth decision endpoint (`decide.ts`); unset, `/_keygate/decide` is 404 like the rest of `/_keygate/`. */
  decide?(req: IncomingMessage, res: ServerResponse): Promise<void>
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>
  jwks(): unknown
  /** Resolves true when the gateway can serve (database reachable, migrations applied, not draining). */
  ready(): Promise<boolean>
  /** Header size, count and time limits; requests past them never reach the pipeline. */
  limits: HttpLimits
  /** True once shutdown began: every answer then closes its connection, so clients reconnect elsewhere. */
  draining(): boolean
  /** Hears each request refused before it reached the pipeline (malformed, headers too large or too slow). */
  onRefused(code: ErrorCode, err?: NodeJS.ErrnoException): void
  /** Set: the listener speaks TLS with this certificate (swapped later with `setSecureContext`). */
  tls?: { cert: string; key: string }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function createGatewayServer(deps: GatewayServerDeps): Server {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (deps.draining()) res.shouldKeepAlive = false
    const refused = requestRefusal(req, deps.limits)
    if (refused) {
      deps.onRefused(refused)
      res.shouldKeepAlive = false
      return writeProblem(res, refused)
    }
    const url = req.url ?? '/'
    // `/_keygate`, `/_keygate/…`, `/_keygate?…` in any case (spellings with escapes are refused by admission).
    if (url.charCodeAt(1) === 95 && /^\/_keygate(?:[/?]|$)/i.test(url)) {
      if (deps.decide && /^\/_keygate\/decide(?:[/?]|$)/i.test(url)) return void deps.decide(req, res)
      return writeProblem(res, 'ROUTE_NOT_FOUND')
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (url === '/healthz') return json(res, 200, { status: 'ok', version: VERSION })
      if (url === '/readyz') {
        deps.ready().then(
          (ok) => (ok ? json(res, 200, { status: 'ready' }) : writeProblem(res, 'NOT_READY')),
          () => writeProblem(res, 'NOT_READY'),
        )
        return
      }
      if (url === '/.well-known/jwks.json') return json(res, 200, deps.jwks(), { 'cache-control': 'public, max-age=300' })
    }
    deps.handle(req, res)
  }
  // HTTPS: the same server, behind a TLS handshake bounded like the headers (a handshake never finished holds a socket).
  const server: Server = deps.tls
    ? (createHttpsServer({ ...serverOptions(deps.limits), cert: deps.tls.cert, key: deps.tls.key, handshakeTimeout: deps.limits.headersTimeoutMs }, handler) as unknown as Server)
    : createServer(serverOptions(deps.limits), handler)
  server.on('upgrade', (req, socket, head) => {
    const refused = requestRefusal(req, deps.limits)
    if (refused) {
      deps.onRefused(refused)
      refuseConnection(socket, refused)
      return
    }
    void deps.upgrade(req, socket, head)
  })
  // CONNECT (a tunnel) names no path: refused like any target that does not start with "/".
  server.on('connect', (_req, socket) => {
    deps.onRefused('PATH_INVALID')
    refuseConnection(socket, 'PATH_INVALID')
  })
  answerClientErrors(server, deps.onRefused)
  return server
}
