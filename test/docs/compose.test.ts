import { existsSync, readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import t from 'tap'
import { parse } from 'yaml'
import { ADMIN_API_REQUIRED } from '../../admin-api/main.ts'
import { createAdminServer } from '../../admin-api/server.ts'
import { parseFileConfig } from '../../config/load.ts'
import { ENV_SETTINGS } from '../../config/schema.ts'
import { closeServer, listen } from '../../core/http-listen.ts'
import { DEMO_REQUIRED, startDemo, type DemoName } from '../../examples/main.ts'
import { createGatewayServer } from '../../gateway/server.ts'
import { DIST, ENTRY_POINTS, entryCommand, type EntryName } from '../../scripts/entry-points.ts'

/**
 * Docker cannot run here, so docker-compose.yml, the Dockerfile and deploy/nginx.conf are held to the code
 * instead: every setting a service is given exists (and is valid), ports agree with PORT and METRICS_PORT,
 * URLs name services on the ports they listen on, dependencies exist, nginx balances over exactly the
 * gateways, and the image's commands and health check are ones the code serves.
 */
const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

interface Service {
  image?: string
  build?: string | { context?: string; dockerfile?: string }
  command?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  ports?: Array<string | number | { target: number }>
  expose?: Array<string | number>
  depends_on?: string[] | Record<string, unknown>
  networks?: string[] | Record<string, { ipv4_address?: string } | null>
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }> }
const services = Object.entries(compose.services)
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string> }

// --- the Dockerfile ---------------------------------------------------------------------------------------
/** Instructions with continuation lines joined, each with the index of its build stage. */
const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  .reduce<Array<{ op: string; args: string; stage: number }>>((acc, line) => {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    const stage = (acc.at(-1)?.stage ?? -1) + (op.toUpperCase() === 'FROM' ? 1 : 0)
    acc.push({ op: op.toUpperCase(), args, stage })
    return acc
  }, [])
const lastStage = Math.max(...dockerfile.map((i) => i.stage))
const runtime = dockerfile.filter((i) => i.stage === lastStage)
const execForm = (args: string): string[] => JSON.parse(args) as string[]
const imageCmd = execForm(runtime.find((i) => i.op === 'CMD')!.args)

// --- what each Keygate service runs -------------------------------------------------------------------------
/** Services built from this repository: they run Keygate code and read Keygate settings. */
const keygate = services.filter(([, s]) => s.build !== undefined)
const commandOf = (s: Service): string[] => (s.command === undefined ? imageCmd : Array.isArray(s.command) ? s.command : s.command.split(/\s+/))
/** The entry point (scripts/entry-points.ts) whose compiled command `command` is, with its source FILE and ARGS. */
function entryOf(command: readonly string[]): { name: EntryName; file: string; args: readonly string[]; script: string } | undefined {
  const name = (Object.keys(ENTRY_POINTS) as EntryName[]).find((n) => entryCommand(n, 'compiled').join(' ') === command.join(' '))
  return name ? { name, ...ENTRY_POINTS[name] } : undefined
}
const entry = (s: Service) => entryOf(commandOf(s))
const gateways = keygate.filter(([, s]) => entry(s)?.file === 'gateway/main.ts')

function envOf(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) return Object.fromEntries(s.environment.map((e) => { const i = e.indexOf('='); return [e.slice(0, i), e.slice(i + 1)] }))
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]))
}
/** Compose's own `${VAR}`, `${VAR:-default}`, `${VAR:?error}`: a stand-in value, since none is set here. */
const interpolated = (value: string) => value.replace(/\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (_, _name: string, op: string | undefined, fallback: string | undefined) => (op?.endsWith('-') ? fallback! : 'placeholder'))
const defaultOf = (name: keyof typeof ENV_SETTINGS) => String(ENV_SETTINGS[name].schema.safeParse(undefined).data)
const portOf = (s: Service) => Number(envOf(s).PORT ?? defaultOf('PORT'))
const metricsPortOf = (s: Service) => Number(envOf(s).METRICS_PORT ?? defaultOf('METRICS_PORT'))
const containerPort = (p: string | number | { target: number }) => (typeof p === 'object' ? p.target : Number(String(p).split(':').at(-1)!.split('/')[0]))

/** Variables the route file interpolates (`${KEYGATE_ADMIN_URL:-internal:admin}`…). */
const routeFileVars = new Set([...read('config/keygate.yaml').matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!))

// --- nginx ----------------------------------------------------------------------------------------------------
const nginx = read('deploy/nginx.conf').replace(/#.*$/gm, '')
const upstreams = new Map([...nginx.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)].map((m) => [m[1]!, [...m[2]!.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((s) => s[1]!)]))
const nginxListen = [...nginx.matchAll(/^\s*listen\s+(\d+)/gm)].map((m) => Number(m[1]))
const nginxService = services.find(([, s]) => s.image?.startsWith('nginx'))

/** Ports other images listen on by default, for URLs that name them. */
const IMAGE_PORTS: Record<string, number> = { postgres: 5432, redis: 6379 }
function listensOn(name: string): number[] {
  const s = compose.services[name]
  if (!s) return []
  if (s.build !== undefined) return [portOf(s)]
  if (s === nginxService?.[1]) return nginxListen
  const image = s.image?.split(':')[0]?.split('/').at(-1) ?? ''
  return IMAGE_PORTS[image] ? [IMAGE_PORTS[image]] : []
}

t.test('every service has an image or a build whose Dockerfile exists', async (t) => {
  t.ok(services.length > 0)
  for (const [name, s] of services) {
    t.ok(s.image !== undefined || s.build !== undefined, `${name} has an image or a build`)
    if (s.build === undefined) continue
    const context = typeof s.build === 'string' ? s.build : s.build.context ?? '.'
    const file = typeof s.build === 'string' ? 'Dockerfile' : s.build.dockerfile ?? 'Dockerfile'
    t.ok(existsSync(new URL(`${context.replace(/\/?$/, '/')}${file}`, root)), `${name} builds from ${context}/${file}, which exists`)
  }
  for (const want of ['postgres', 'redis']) t.ok(services.some(([, s]) => s.image?.startsWith(want)), `a ${want} service`)
  t.equal(gateways.length, 2, 'two gateway replicas')
  t.ok(keygate.some(([, s]) => entry(s)?.file === 'admin-api/main.ts'), 'the admin API as its own service')
  t.same(keygate.filter(([, s]) => entry(s)?.file === 'examples/main.ts').map(([, s]) => entry(s)!.args[0]).sort(), ['conversations', 'documents'], 'both demo upstreams')
  t.ok(nginxService, 'a load balancer')
})

t.test('the Dockerfile is multi-stage, compiles in the build stage, installs production dependencies only at runtime and runs as a non-root user', async (t) => {
  t.ok(lastStage >= 1, 'more than one stage')
  t.ok(dockerfile.some((i) => i.stage < lastStage && i.op === 'RUN' && /\bnpm run build\b/.test(i.args)), 'a build stage runs npm run build')
  t.ok(runtime.some((i) => i.op === 'COPY' && i.args.startsWith('--from=') && i.args.split(/\s+/)[1] === `/app/${DIST}`), `the runtime stage copies the compiled ${DIST}/`)
  t.ok(runtime.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args) && i.args.includes('--omit=dev')), 'the runtime stage runs npm ci --omit=dev')
  t.notOk(pkg.dependencies.tsx, 'tsx is not a production dependency: the image runs compiled code')
  t.ok(pkg.devDependencies.tsx, 'tsx is a dev dependency (npm run dev, the tests)')
  t.match(dockerfile.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='))?.args, /^NODE_IMAGE=node:24[-.]/, 'the image is built on Node 24')
  const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args
  t.ok(user && !/^(root|0)(:|$)/.test(user), `the runtime user is ${user}, not root`)
  for (const copy of runtime.filter((i) => i.op === 'COPY' && i.args.startsWith('--from='))) {
    const source = copy.args.split(/\s+/)[1]!.replace(/^\/app\//, '')
    if (source === DIST) continue
    t.ok(existsSync(new URL(source, root)), `COPY ${source}: exists in the repository`)
  }
})

t.test('every command the image or a service runs is the compiled command of an entry point, the same as its npm script', async (t) => {
  const commands: Array<[string, string[]]> = [['Dockerfile CMD', imageCmd], ...keygate.map(([name, s]): [string, string[]] => [name, commandOf(s)])]
  for (const [who, command] of commands) {
    const e = entryOf(command)
    if (!e) {
      t.fail(`${who}: "${command.join(' ')}" is no compiled command of scripts/entry-points.ts`)
      continue
    }
    t.ok(existsSync(new URL(e.file, root)), `${who}: ${e.file} exists`)
    t.equal(pkg.scripts[e.script], command.join(' '), `${who}: the same as \`npm run ${e.script}\``)
  }
  t.same(imageCmd, entryCommand('gateway', 'compiled'), 'the image runs the gateway by default')
})

t.test('the HEALTHCHECK asks PORT for a path every Keygate process answers without credentials', async (t) => {
  const healthcheck = runtime.find((i) => i.op === 'HEALTHCHECK')
  t.ok(healthcheck, 'the runtime stage has a HEALTHCHECK')
  const script = healthcheck!.args.replace(/^.*?CMD\s+/, '')
  const path = /'(\/[^']*)'/.exec(script)?.[1]
  t.ok(path, `it asks for ${path}`)
  t.match(script, `process.env.PORT || ${defaultOf('PORT')}`, 'on PORT, defaulting as Keygate does')

  const status = async (server: Server) => {
    const port = await listen(server, 0, '127.0.0.1')
    try {
      return (await fetch(`http://127.0.0.1:${port}${path}`)).status
    } finally {
      await closeServer(server, 100)
    }
  }
  const unreachable = async () => { throw new Error('no credential checks expected') }
  const limits = { headersTimeoutMs: 10_000, maxHeaderBytes: 16_384, maxHeaders: 100 }
  const probes: Record<string, (args: readonly string[]) => Promise<number>> = {
    'gateway/main.ts': () => status(createGatewayServer({ handle: unreachable, upgrade: unreachable, jwks: () => ({ keys: [] }), ready: async () => true, limits, draining: () => false, onRefused: () => {} })),
    'admin-api/main.ts': () => status(createAdminServer({ app: (_req, res) => void res.writeHead(500).end(), ready: async () => true, limits })),
    'examples/main.ts': async ([name]) => {
      const demo = await startDemo(name as DemoName, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', KEYGATE_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json' })
      try {
        return (await fetch(`${demo.url}${path}`)).status
      } finally {
        await demo.close()
      }
    },
  }
  for (const [name, s] of keygate) {
    const e = entry(s)!
    const probe = probes[e.file]
    if (!probe) {
      t.fail(`${name} runs ${e.file}: add its health probe to this test`)
      continue
    }
    t.equal(await probe(e.args), 200, `${name} (${[e.file, ...e.args].join(' ')}) answers ${path}`)
  }
})

t.test('every variable a Keygate service sets is a setting (or a route file variable) with a valid value', async (t) => {
  for (const [name, s] of keygate) {
    for (const [key, value] of Object.entries(envOf(s))) {
      if (Object.hasOwn(ENV_SETTINGS, key)) {
        // As config/load.ts reads the environment: a variable set to the empty string counts as unset.
        const given = interpolated(value)
        const parsed = ENV_SETTINGS[key as keyof typeof ENV_SETTINGS].schema.safeParse(given === '' ? undefined : given)
        t.ok(parsed.success, `${name}: ${key}=${value} is valid${given === '' ? ' left empty (unset)' : ''}${parsed.success ? '' : `: ${parsed.error.issues[0]?.message}`}`)
      } else {
        t.ok(routeFileVars.has(key), `${name}: ${key} is in ENV_SETTINGS or read by config/keygate.yaml`)
        t.equal(entry(s)?.file, 'gateway/main.ts', `${name}: ${key} is a route file variable, so ${name} must be a gateway`)
      }
    }
  }
})

t.test('every process has the settings it requires, and all share one database and one bus', async (t) => {
  const required: Record<string, ReadonlyArray<{ name: string }>> = {
    'admin-api/main.ts': ADMIN_API_REQUIRED,
    'examples/main.ts': DEMO_REQUIRED,
    // Several gateways cannot share the embedded database.
    'gateway/main.ts': [{ name: 'DATABASE_URL' }],
  }
  for (const [name, s] of keygate) {
    for (const r of required[entry(s)!.file] ?? []) t.ok(envOf(s)[r.name], `${name} sets ${r.name}`)
  }
  const stateful = keygate.filter(([, s]) => envOf(s).DATABASE_URL)
  for (const key of ['DATABASE_URL', 'DATABASE_SCHEMA', 'REDIS_URL', 'KEYGATE_REDIS_PREFIX', 'KEYGATE_ISSUER', 'KEYGATE_JWT_SECRET', 'KEYGATE_IDENTITY_HEADER']) {
    const values = new Set(stateful.map(([, s]) => envOf(s)[key]))
    t.equal(values.size, 1, `${stateful.map(([n]) => n).join(', ')} agree on ${key}`)
  }
})

t.test('the route file sends the admin API and the demos to their services, none in-process', async (t) => {
  for (const [name, s] of gateways) {
    const env = Object.fromEntries(Object.entries(envOf(s)).map(([k, v]) => [k, interpolated(v)]))
    const { config, problems } = parseFileConfig(read('config/keygate.yaml'), 'config/keygate.yaml', env)
    t.same(problems, [], `${name}: the route file loads`)
    for (const [upstream, u] of Object.entries(config?.upstreams ?? {})) {
      for (const url of ([] as string[]).concat(u.url)) t.notOk(url.startsWith('internal:'), `${name}: upstream ${upstream} is ${url}`)
    }
  }
})

t.test('ports: a Keygate service exposes its PORT and only PORT or METRICS_PORT; only the load balancer is published', async (t) => {
  for (const [name, s] of keygate) {
    const own = new Set([portOf(s), metricsPortOf(s)])
    const exposed = [...(s.expose ?? []), ...(s.ports ?? [])].map(containerPort)
    t.ok(exposed.includes(portOf(s)), `${name} exposes its PORT ${portOf(s)}`)
    for (const p of exposed) t.ok(own.has(p), `${name}: port ${p} is its PORT or METRICS_PORT`)
    if (exposed.includes(metricsPortOf(s))) t.equal(envOf(s).METRICS_HOST, '0.0.0.0', `${name}: an exposed metrics port listens beyond loopback`)
    t.notOk(s.ports?.length, `${name} publishes no port on the host: it is reached through the load balancer`)
  }
  const [lbName, lb] = nginxService!
  t.ok((lb.ports ?? []).map(containerPort).every((p) => nginxListen.includes(p)), `${lbName} publishes a port nginx listens on (${nginxListen.join(', ')})`)
})

t.test('every URL a Keygate service is given names a service on a port that service listens on', async (t) => {
  let checked = 0
  for (const [name, s] of keygate) {
    for (const [key, value] of Object.entries(envOf(s))) {
      const url = /^[a-z]+:\/\//.test(value) ? new URL(interpolated(value)) : undefined
      if (!url || !compose.services[url.hostname]) continue
      const port = Number(url.port || (url.protocol === 'http:' ? 80 : NaN))
      t.ok(listensOn(url.hostname).includes(port), `${name}: ${key} → ${url.hostname}:${port}, where ${url.hostname} listens`)
      checked++
    }
  }
  t.ok(checked >= 8, `${checked} URLs checked`)
})

t.test('depends_on names services that exist', async (t) => {
  for (const [name, s] of services) {
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})
    for (const d of deps) {
      t.ok(Object.hasOwn(compose.services, d), `${name} depends on ${d}, a service`)
      t.not(d, name, `${name} does not depend on itself`)
    }
  }
})

t.test('nginx balances over exactly the gateway services, on their PORT, and gateways trust only it', async (t) => {
  const proxied = [...nginx.matchAll(/proxy_pass\s+https?:\/\/([^/;\s]+)/g)].map((m) => m[1]!)
  t.ok(proxied.length > 0, 'nginx proxies')
  for (const upstream of proxied) {
    t.ok(upstreams.has(upstream), `proxy_pass names the upstream block ${upstream}`)
    t.same((upstreams.get(upstream) ?? []).slice().sort(), gateways.map(([n, s]) => `${n}:${portOf(s)}`).sort(), `${upstream} lists every gateway service and no other`)
  }
  const [, lb] = nginxService!
  const lbAddress = Array.isArray(lb.networks) ? undefined : Object.values(lb.networks ?? {}).find((n) => n?.ipv4_address)?.ipv4_address
  t.ok(lbAddress, 'the load balancer has a fixed address')
  for (const [name, s] of gateways) t.equal(envOf(s).KEYGATE_TRUSTED_PROXIES, lbAddress, `${name} believes X-Forwarded-* from the load balancer alone`)
})
