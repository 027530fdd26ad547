import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { sendProblem } from './problem.ts'

/**
 * The gateway's HTTP server: its own endpoints (`/healthz`, `/readyz`, `/.well-known/jwks.json`) and, for
 * everything else, the pipeline.
 */
export interface GatewayServerDeps {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>
  jwks(): unknown
  /** Resolves true when the gateway can serve (database reachable, migrations applied, not draining). */
  ready(): Promise<boolean>
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function createGatewayServer(deps: GatewayServerDeps): Server {
  const server = createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? '/'
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (url === '/healthz') return json(res, 200, { status: 'ok' })
      if (url === '/readyz') {
        deps.ready().then(
          (ok) => (ok ? json(res, 200, { status: 'ready' }) : sendProblem(res, 'NOT_READY')),
          () => sendProblem(res, 'NOT_READY'),
        )
        return
      }
      if (url === '/.well-known/jwks.json') return json(res, 200, deps.jwks(), { 'cache-control': 'public, max-age=300' })
    }
    void deps.handle(req, res)
  })
  server.on('upgrade', (req, socket, head) => { void deps.upgrade(req, socket, head) })
  return server
}
