import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface EchoServer {
  readonly origin: string
  /** Every request the upstream received: method, path and raw headers. */
  readonly seen: Array<{ method: string; url: string; rawHeaders: string[]; headers: IncomingMessage['headers'] }>
  close(): Promise<void>
}

/** An upstream that answers 200 with what it received, so tests can see exactly what the gateway forwarded. */
export async function echoServer(): Promise<EchoServer> {
  const seen: EchoServer['seen'] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers })
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }))
    })
  })
  return { origin: await listen(server), seen, close: () => close(server) }
}

/** An upstream that accepts connections and never answers. */
export async function hangingServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer(() => {})
  return { origin: await listen(server), close: () => close(server) }
}

export function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

export function close(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

const routeDirs: string[] = []
process.once('exit', () => { for (const dir of routeDirs) rmSync(dir, { recursive: true, force: true }) })

/** Writes a route file to a temporary directory (removed when the test process exits) and returns its path. */
export function routeFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-config-'))
  routeDirs.push(dir)
  const path = join(dir, 'keygate.yaml')
  writeFileSync(path, yaml)
  return path
}

/**
 * A route file (see `routeFile`) with the admin API's routes (login public, the rest behind a credential),
 * an upstream `echo` at `echoOrigin`, and `routes` (YAML route lines naming `echo`).
 */
export function echoRouteFile(echoOrigin: string, routes: string): string {
  return routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  echo: { url: "${echoOrigin}" }
routes:
  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
${routes.trim().split('\n').map((l) => `  ${l.trim()}`).join('\n')}
`)
}
