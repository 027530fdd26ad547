import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { requireIdentity, type IdentifiedRequest } from '@keygate/verify'
import { ROOT } from '../../scripts/entry-points.ts'
import { freePort } from './ports.ts'
import { close } from './upstreams.ts'

/**
 * Real ingresses from Debian's packages (nginx, Caddy) started from the configurations Keygate ships in
 * `deploy/`, with only the addresses (and nginx's cache directory) put in, as unprivileged child processes on
 * free ports; and the Express application they protect, which verifies the signed identity with
 * @keygate/verify.
 */

export interface Ingress {
  readonly url: string
  /** What the ingress logged (nginx's error log, Caddy's output), for failure messages. */
  log(): string
  stop(): Promise<void>
}

const NOBODY = 65534

function binary(name: string, pkg: string): string {
  const found = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')].map((d) => join(d, name)).find((p) => existsSync(p))
  if (!found) throw new Error(`${name} is not installed: apt-get install -y --no-install-recommends ${pkg} (.ci/run installs it when missing)`)
  return found
}

/** A temporary directory the child may write to (owned by nobody when the tests run as root). */
function workDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `keygate-${label}-`))
  chmodSync(dir, 0o755)
  if (process.getuid?.() === 0) chownSync(dir, NOBODY, NOBODY)
  return dir
}

/** Runs as nobody when the tests run as root: an ingress needs no privilege on a free port. */
const unprivileged = () => (process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {})

/** Replaces `from` in `text` (which must contain it: a changed shipped file fails the test, not the substitution). */
function put(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the shipped configuration no longer contains "${from}"`)
  return text.replaceAll(from, to)
}

async function waitUntilAnswering(url: string, child: ChildProcess, log: () => string): Promise<void> {
  let exited = false
  child.once('exit', () => { exited = true })
  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited) throw new Error(`the ingress exited before it answered:\n${log()}`)
    try {
      await fetch(url, { signal: AbortSignal.timeout(2000) })
      return
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`the ingress did not answer on ${url}:\n${log()}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function stopper(child: ChildProcess, signal: NodeJS.Signals, dir: string): () => Promise<void> {
  let exited = child.exitCode !== null
  child.once('exit', () => { exited = true })
  return async () => {
    if (!exited) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        child.once('exit', () => { clearTimeout(timer); resolve() })
        child.kill(signal)
      })
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `deploy/nginx-forward-auth.conf` in front of `app`, asking `keygate` (host:port each). */
export async function startNginxForwardAuth(keygate: string, app: string): Promise<Ingress> {
  const bin = binary('nginx', 'nginx')
  const dir = workDir('nginx')
  const port = await freePort()
  let conf = readFileSync(join(ROOT, 'deploy/nginx-forward-auth.conf'), 'utf8')
  conf = put(conf, 'server keygate:8000;', `server ${keygate};`)
  conf = put(conf, 'server app:8080;', `server ${app};`)
  conf = put(conf, 'listen 80;', `listen 127.0.0.1:${port};`)
  conf = put(conf, '/run/nginx-keygate-decisions', join(dir, 'decisions'))
  writeFileSync(join(dir, 'forward-auth.conf'), conf)
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/forward-auth.conf;
}
`)
  for (const f of ['forward-auth.conf', 'nginx.conf']) if (process.getuid?.() === 0) chownSync(join(dir, f), NOBODY, NOBODY)
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'], ...unprivileged() })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const log = () => stderr + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '')
  const url = `http://127.0.0.1:${port}`
  await waitUntilAnswering(url, child, log)
  // SIGQUIT: nginx's graceful shutdown.
  return { url, log, stop: stopper(child, 'SIGQUIT', dir) }
}

/** `deploy/Caddyfile.forward-auth` in front of `app`, asking `keygate` (host:port each). */
export async function startCaddyForwardAuth(keygate: string, app: string): Promise<Ingress> {
  const bin = binary('caddy', 'caddy')
  const dir = workDir('caddy')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // The shipped file as it is, copied where nobody can read it: the checkout may sit in a directory only its
  // owner can enter (a clone into `mktemp -d`).
  const caddyfile = join(dir, 'Caddyfile')
  copyFileSync(join(ROOT, 'deploy/Caddyfile.forward-auth'), caddyfile)
  if (process.getuid?.() === 0) chownSync(caddyfile, NOBODY, NOBODY)
  const child = spawn(bin, ['run', '--adapter', 'caddyfile', '--config', caddyfile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...unprivileged(),
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      CADDY_ADMIN: 'off',
      SITE_ADDRESS: url,
      KEYGATE_ADDRESS: keygate,
      APP_ADDRESS: app,
    },
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  await waitUntilAnswering(url, child, () => output)
  return { url, log: () => output, stop: stopper(child, 'SIGTERM', dir) }
}

/** The version string of an installed ingress (for test names and reports). */
export function ingressVersion(name: 'nginx' | 'caddy'): string {
  const r = name === 'nginx' ? spawnSync(binary('nginx', 'nginx'), ['-v'], { encoding: 'utf8' }) : spawnSync(binary('caddy', 'caddy'), ['version'], { encoding: 'utf8' })
  return (r.stderr + r.stdout).trim()
}

export interface IdentityApp {
  readonly origin: string
  /** host:port, for an ingress configuration. */
  readonly address: string
  /** Every request that reached the application: method, URL and headers. */
  readonly seen: Array<{ method: string; url: string; headers: Record<string, string | string[] | undefined> }>
  close(): Promise<void>
}

/**
 * The application behind the ingress, in Express: under `/public` it answers anyone; everywhere else it
 * requires the identity header and verifies it with @keygate/verify against the gateway's key set (`jwksUrl`,
 * audience `app`), answering with the verified identity.
 */
export async function identityApp(jwksUrl: string): Promise<IdentityApp> {
  const seen: IdentityApp['seen'] = []
  const app = express()
  app.use((req, _res, next) => { seen.push({ method: req.method, url: req.originalUrl, headers: { ...req.headers } }); next() })
  app.all('/public{/*rest}', (req, res) => { res.json({ public: true, identity_header: req.headers['x-keygate-identity'] ?? null }) })
  app.use(requireIdentity({ jwksUrl, audience: 'app' }))
  app.all('/{*rest}', (req, res) => {
    const identity = (req as unknown as IdentifiedRequest).identity!
    res.json({ method: req.method, path: req.originalUrl, verified: { user_id: identity.sub, username: identity.username, auth: identity.auth } })
  })
  const server: Server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return { origin, address: origin.slice('http://'.length), seen, close: () => close(server) }
}
