import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { entryArgs, ROOT, RUNTIME, type EntryName } from './entry-points.ts'

/**
 * `npm run fleet`: the production topology on one machine, without Docker. Each part is its own process, as
 * in docker-compose.yml: the admin API (`admin-api/main.ts`), the gateways (`gateway/main.ts`, one per port)
 * and the two demo upstreams (`examples/main.ts`), on the local PostgreSQL server and Redis. Each runs as the
 * fleet itself does (scripts/entry-points.ts): compiled under `npm run fleet`, from the sources under tsx.
 *
 *   npm run fleet -- [--gateways 8001,8002] [--admin 8010] [--conversations 8011] [--documents 8012]
 *
 * Every Keygate setting in the environment reaches every process; the fleet fills in DATABASE_URL
 * (postgres://postgres@127.0.0.1:5432/test), DATABASE_SCHEMA (keygate_fleet), REDIS_URL
 * (redis://127.0.0.1:6379), KEYGATE_REDIS_PREFIX (keygate:fleet:) and HOST (127.0.0.1) when they are unset,
 * and sets per process PORT, METRICS_PORT (0: a free port, printed), the gateways' upstream URLs and the key
 * set URL (the first gateway's) of the admin API and the demos. Prints the URLs once everything listens;
 * SIGINT or SIGTERM stops every process (gateways first, so they drain). If one process dies, all stop.
 */
export const FLEET_DEFAULTS = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
  DATABASE_SCHEMA: 'keygate_fleet',
  REDIS_URL: 'redis://127.0.0.1:6379',
  KEYGATE_REDIS_PREFIX: 'keygate:fleet:',
  HOST: '127.0.0.1',
} as const

export interface FleetPorts { gateways: number[]; admin: number; conversations: number; documents: number }

/** One process of the fleet: which entry point it runs, with which environment, and the log line that says it listens. */
export interface FleetMember { name: string; role: 'gateway' | 'admin' | 'demo'; url: string; entry: EntryName; env: Record<string, string>; readyMsg: string }

/** The fleet's processes for `ports`, each with its environment (`base` plus what the topology decides). */
export function planFleet(ports: FleetPorts, base: NodeJS.ProcessEnv): FleetMember[] {
  const shared: Record<string, string> = Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''))
  for (const [k, v] of Object.entries(FLEET_DEFAULTS)) shared[k] ??= v
  // A process listening on every interface is still reached over loopback.
  const host = shared.HOST === '0.0.0.0' || shared.HOST === '::' ? '127.0.0.1' : shared.HOST!
  const origin = (port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const jwks = shared.KEYGATE_JWKS_URL ?? `${origin(ports.gateways[0]!)}/.well-known/jwks.json`
  const own = (port: number, extra: Record<string, string> = {}) => ({ ...shared, PORT: String(port), METRICS_PORT: '0', ...extra })
  return [
    { name: 'admin-api', role: 'admin', url: origin(ports.admin), entry: 'admin-api', env: own(ports.admin, { KEYGATE_JWKS_URL: jwks }), readyMsg: 'admin api listening' },
    { name: 'demo-conversations', role: 'demo', url: origin(ports.conversations), entry: 'demo-conversations', env: own(ports.conversations, { KEYGATE_JWKS_URL: jwks }), readyMsg: 'demo listening' },
    { name: 'demo-documents', role: 'demo', url: origin(ports.documents), entry: 'demo-documents', env: own(ports.documents, { KEYGATE_JWKS_URL: jwks }), readyMsg: 'demo listening' },
    ...ports.gateways.map((port, i): FleetMember => ({
      name: `gateway-${i + 1}`,
      role: 'gateway',
      url: origin(port),
      entry: 'gateway',
      env: own(port, {
        KEYGATE_ADMIN_URL: origin(ports.admin),
        CONVERSATIONS_URL: origin(ports.conversations),
        DOCUMENTS_URL: origin(ports.documents),
        KEYGATE_DEMOS: 'false',
      }),
      readyMsg: 'keygate listening',
    })),
  ]
}

interface Running {
  member: FleetMember
  child: ChildProcess
  exited: Promise<number | null>
  /** Resolves with the metrics port (when the process has one) once its ready line appears; rejects when it exits or stays silent first. */
  ready: Promise<number | undefined>
  metricsPort?: number
}

/** Spawns one member; its output goes to `write`, each line prefixed with its name. */
function start(member: FleetMember, write: (line: string) => void, timeoutMs: number): Running {
  const child = spawn(process.execPath, entryArgs(member.entry, RUNTIME), { cwd: ROOT, env: member.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))))
  const tail: string[] = []
  const ready = new Promise<number | undefined>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${member.name} did not start within ${timeoutMs} ms:\n${tail.join('\n')}`)) }, timeoutMs)
    let listening = false
    const lines = (onLine: (line: string) => void) => {
      let rest = ''
      return (chunk: Buffer) => {
        const parts = (rest + chunk.toString()).split('\n')
        rest = parts.pop()!
        for (const line of parts) if (line) onLine(line)
      }
    }
    const onLine = (line: string) => {
      write(`[${member.name}] ${line}`)
      tail.push(line)
      if (tail.length > 50) tail.shift()
      if (listening || !line.includes(member.readyMsg)) return
      let entry: { msg?: string; url?: string; metrics_port?: number }
      try {
        entry = JSON.parse(line) as typeof entry
      } catch {
        return
      }
      if (entry.msg !== member.readyMsg) return
      listening = true
      clearTimeout(timer)
      resolve(entry.metrics_port)
    }
    child.stdout!.on('data', lines(onLine))
    child.stderr!.on('data', lines(onLine))
    void exited.then((code) => {
      clearTimeout(timer)
      if (!listening) reject(new Error(`${member.name} exited with ${code} before it listened:\n${tail.join('\n')}`))
    })
  })
  return { member, child, exited, ready }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
async function stopOne(r: Pick<Running, 'child' | 'exited'>, graceMs: number): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return
  r.child.kill('SIGTERM')
  const timer = setTimeout(() => r.child.kill('SIGKILL'), graceMs)
  await r.exited
  clearTimeout(timer)
}

function parsePorts(argv: string[]): FleetPorts {
  const { values } = parseArgs({
    args: argv,
    options: {
      gateways: { type: 'string', default: '8001,8002' },
      admin: { type: 'string', default: '8010' },
      conversations: { type: 'string', default: '8011' },
      documents: { type: 'string', default: '8012' },
    },
  })
  const port = (text: string, what: string) => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new RangeError(`--${what}: ${text} is not a port (1-65535)`)
    return n
  }
  const ports = {
    gateways: values.gateways.split(',').map((p) => port(p.trim(), 'gateways')),
    admin: port(values.admin, 'admin'),
    conversations: port(values.conversations, 'conversations'),
    documents: port(values.documents, 'documents'),
  }
  const all = [...ports.gateways, ports.admin, ports.conversations, ports.documents]
  if (new Set(all).size !== all.length) throw new RangeError(`every process needs a port of its own: ${all.join(', ')}`)
  return ports
}

/** The database and Redis URLs without their passwords, for the banner. */
function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}

async function main(): Promise<void> {
  const out = (line: string) => process.stdout.write(line + '\n')
  let ports: FleetPorts
  try {
    ports = parsePorts(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`fleet: ${(err as Error).message}\nusage: npm run fleet -- [--gateways 8001,8002] [--admin 8010] [--conversations 8011] [--documents 8012]\n`)
    process.exit(2)
  }
  const members = planFleet(ports, process.env)
  const graceMs = (Number(members[0]!.env.KEYGATE_SHUTDOWN_GRACE_MS) || 10_000) + 5_000
  let running: Running[] = []
  let stopping: Promise<void> | undefined
  const stopAll = (why: string, code: number) => {
    stopping ??= (async () => {
      out(`fleet: stopping (${why})`)
      // Gateways first: they drain while the admin API and the upstreams still answer.
      const byRole = (role: FleetMember['role']) => running.filter((r) => r.member.role === role)
      await Promise.all(byRole('gateway').map((r) => stopOne(r, graceMs)))
      await Promise.all([...byRole('admin'), ...byRole('demo')].map((r) => stopOne(r, graceMs)))
      out('fleet: stopped')
      process.exit(code)
    })()
    return stopping
  }
  process.once('SIGINT', () => void stopAll('SIGINT', 0))
  process.once('SIGTERM', () => void stopAll('SIGTERM', 0))

  running = members.map((m) => start(m, out, 60_000))
  const started = await Promise.allSettled(running.map(async (r) => { r.metricsPort = await r.ready }))
  if (stopping) return
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    process.stderr.write(`fleet: ${(failed.reason as Error).message}\n`)
    await stopAll('a process failed to start', 1)
    return
  }
  for (const r of running) {
    void r.exited.then((code) => { if (!stopping) void stopAll(`${r.member.name} exited with ${code}`, 1) })
  }

  const env = members[0]!.env
  const width = Math.max(...members.map((m) => m.name.length))
  const order = ['gateway', 'admin', 'demo'] as const
  out(`keygate fleet is up: PostgreSQL ${redact(env.DATABASE_URL!)} schema ${env.DATABASE_SCHEMA}, Redis ${redact(env.REDIS_URL!)} prefix ${env.KEYGATE_REDIS_PREFIX}`)
  for (const role of order) {
    for (const r of running.filter((x) => x.member.role === role)) {
      const metrics = r.metricsPort ? `  metrics http://127.0.0.1:${r.metricsPort}/metrics` : ''
      const note = role === 'admin' ? '  (clients reach it through a gateway at /api/v1/auth)' : ''
      out(`  ${r.member.name.padEnd(width)}  ${r.member.url}${metrics}  pid ${r.child.pid}${note}`)
    }
  }
  out(`Try: curl -s -X POST ${members.find((m) => m.role === 'gateway')!.url}/api/v1/auth/login -H 'content-type: application/json' -d '{"username":"…","password":"…"}'`)
  out('Ctrl-C stops everything.')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`fleet: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
