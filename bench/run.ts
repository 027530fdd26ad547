import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startChildProxy } from './child-proxy.ts'
import { accessTokenSecret, BENCH_DATABASE_URL, BENCH_ONLY, BENCH_REDIS_URL, benchGatewayEnv, credentials, deleteRedisKeys, keyPool, sharedStores } from './fixtures.ts'
import { startBenchKeygate } from './keygate-process.ts'
import { startNginx } from './nginx.ts'
import { startNginxForwardAuth } from './nginx-forward-auth.ts'
import { node24 } from './node-runtime.ts'
import { comparisonLines, median, roundOrder, sectionTable, sectionTargets, type Round, type Scenario, type Section } from './report.ts'
import { stackEnv } from './stack-settings.ts'
import { endedChildrenCpuMs, treeCpuSplitMs, treeRss, writeResults } from './system.ts'
import { startUpstream } from './upstream.ts'
import { loadGenerator } from './wrk.ts'

/**
 * `npm run bench`: Keygate beside nginx, the bare Node proxy and the gateways a Node team would write instead, in
 * one run on one machine. Starts a minimal upstream (Node `http`, ~200-byte JSON) in this process, nginx in front
 * of it, a bare Node proxy (the floor any Node gateway stands on, see bare-proxy.ts), two stacks from the usual
 * packages (stack-express.ts, stack-fastify.ts) and Keygate processes on the local PostgreSQL and Redis and on the
 * embedded default; then drives every path with wrk at 50 connections, in interleaved rounds so drift hits every
 * candidate alike (a warm-up run first). Then the same Node rows again on Node 24 (the registry's `node`
 * package) as a second section. Prints one markdown table per section, with the targets of issue 16 checked under
 * each, and writes them under bench/results/.
 *
 * BENCH_SECONDS (10 per round), BENCH_ROUNDS (2), BENCH_WARMUP (2 s), BENCH_CONNECTIONS (50), BENCH_POOL (2000
 * keys for the cold path), BENCH_ONLY (scenario ids, comma-separated: direct,nginx,bare,apikey,apikey-limited,jwt,cold,
 * embedded,workers2,decide-cached,decide-uncached,express,fastify; `express` and `fastify` are each a stack's two
 * rows), BENCH_NODE24=0 (no Node 24 section), BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_NODE_ARGS (extra node
 * arguments for the gateways, the bare proxy and the stacks, such as `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_KEEP=1 (keep the gateways'
 * logs), BENCH_COMPARE_DIR (another checkout, such as the code before a change: its gateway runs beside this one on
 * the same database, as the scenarios apikey-base, jwt-base, apikey-limited-base and cold-base, in the first section; it may
 * be this checkout, to compare node arguments), BENCH_COMPARE_NODE_ARGS (that gateway's node arguments instead of BENCH_NODE_ARGS), BENCH_RESULTS_FILE (where the
 * tables are written; `bench/results/gateway-<date>[-compare|-partial].md` by default, `-b`, `-c`, … after it for
 * the day's later runs).
 */
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const warmup = Number(process.env.BENCH_WARMUP ?? 2)
const poolSize = Number(process.env.BENCH_POOL ?? 2000)
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
const compareDir = process.env.BENCH_COMPARE_DIR
const compareNodeArgs = process.env.BENCH_COMPARE_NODE_ARGS === undefined ? nodeArgs : process.env.BENCH_COMPARE_NODE_ARGS.split(' ').filter(Boolean)
const cores = cpus().length

const wanted = (id: string) => !BENCH_ONLY || BENCH_ONLY.has(id)
const version = (pkg: string) => (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version

/** What each stack does and does not do, in its rows' names. */
const STACKS = [
  { id: 'express', script: 'bench/stack-express.ts', name: () => `Express ${version('express')} + http-proxy + jsonwebtoken` },
  { id: 'fastify', script: 'bench/stack-fastify.ts', name: () => `Fastify ${version('fastify')} + @fastify/http-proxy + @fastify/jwt` },
] as const
const STACK_KEY = 'API key (SHA-256, LRU → PostgreSQL; a revocation seen after up to 60 s; no signed identity, metrics or limits)'
const STACK_JWT = 'JWT (HS256 checked on every request; no revocation before exp; no signed identity, metrics or limits)'

/** The Node runtime one section runs its proxies on; `first`: the section that also has nginx, direct and decision mode. */
interface Runtime { node: string; version: string; tag: string; first: boolean }

async function main() {
  const upstream = await startUpstream()
  const upstreamOrigin = upstream.origin
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-'))
  const common = benchGatewayEnv(dir, upstreamOrigin)

  const notes: string[] = []
  const runtimes: Runtime[] = [{ node: process.execPath, version: process.version, tag: '', first: true }]
  if (process.env.BENCH_NODE24 !== '0') {
    const n = node24()
    if ('skipped' in n) notes.push(`Node 24 section skipped: ${n.skipped}`)
    else runtimes.push({ node: n.path, version: n.version, tag: '-node24', first: false })
  }
  const generator = loadGenerator(dir)
  let stores: Awaited<ReturnType<typeof sharedStores>> | undefined
  let creds: { jwt: string; key: string; secret: string } | undefined
  const sections: Section[] = []
  try {
    const needPg = ['apikey', 'apikey-limited', 'jwt', 'cold', 'workers2', 'decide-cached', 'decide-uncached', 'express', 'fastify'].filter(wanted)
    if (needPg.length) {
      stores = await sharedStores(BENCH_DATABASE_URL, BENCH_REDIS_URL)
      if ('skipped' in stores) notes.push(`${needPg.join(', ')} skipped: ${stores.skipped}`)
    }
    for (const rt of runtimes) {
      const scenarios: Scenario[] = []
      const stops: Array<{ name: string; stop(): Promise<void>; died(): string | undefined }> = []
      const start = <T extends { stop(): Promise<void>; died?(): string | undefined }>(name: string, p: T): T => {
        stops.push({ name, stop: () => p.stop(), died: () => p.died?.() })
        return p
      }
      try {
        if (rt.first && wanted('direct')) scenarios.push({ id: 'direct', name: 'direct (no proxy)', spec: { origin: upstreamOrigin, path: '/bench' } })
        if (rt.first && wanted('nginx')) {
          const n = await startNginx(dir, upstreamOrigin)
          if ('skipped' in n) notes.push(`nginx skipped: ${n.skipped}`)
          else scenarios.push({ id: 'nginx', name: `nginx ${n.version} (1 worker, keep-alive upstream)`, spec: { origin: start('nginx', n).url, path: '/bench' }, pid: n.pid })
        }
        if (wanted('bare')) {
          const bare = start('bare proxy', await startChildProxy('bench/bare-proxy.ts', { node: rt.node, nodeArgs, args: [upstreamOrigin] }))
          scenarios.push({ id: 'bare', name: 'bare Node proxy (http server + undici dispatch, nothing else)', spec: { origin: bare.url, path: '/bench' }, pid: bare.pid })
        }
        if (stores && !('skipped' in stores) && needPg.length) {
          const s = stores
          const pgEnv = { ...common, DATABASE_URL: BENCH_DATABASE_URL, DATABASE_SCHEMA: s.schema, REDIS_URL: BENCH_REDIS_URL }
          const prefix = `${s.prefix}${rt.tag}`
          const keygate = async (name: string, env: Record<string, string>, cwd?: string) => start(name, await startBenchKeygate(`${name}${rt.tag}`, dir, { ...pgEnv, ...env }, cwd ? compareNodeArgs : nodeArgs, cwd, rt.node))
          // Started before the others: the first creates the schema's tables and the bench user.
          const kg = await keygate('keygate-pg', { KEYGATE_REDIS_PREFIX: `${prefix}a:` })
          creds ??= { ...(await credentials(kg.url)), secret: await accessTokenSecret(BENCH_DATABASE_URL, s.schema) }
          const { jwt, key } = creds
          if (wanted('apikey')) scenarios.push({ id: 'apikey', name: 'Keygate, API key (warm cache)', spec: { origin: kg.url, path: '/bench', bearer: key }, pid: kg.pid })
          if (wanted('jwt')) scenarios.push({ id: 'jwt', name: 'Keygate, JWT', spec: { origin: kg.url, path: '/bench', bearer: jwt }, pid: kg.pid })
          // The same key on a route with a rate limit (never reached): what counting in Redis costs per request.
          if (wanted('apikey') || wanted('apikey-limited')) scenarios.push({ id: 'apikey-limited', name: 'Keygate, API key, route rate limit counted in Redis', spec: { origin: kg.url, path: '/limited', bearer: key }, pid: kg.pid })
          if (compareDir && rt.first) {
            const base = await keygate('keygate-base', { KEYGATE_REDIS_PREFIX: `${prefix}b:` }, compareDir)
            if (wanted('apikey')) scenarios.push({ id: 'apikey-base', name: `Keygate at ${compareDir}, API key (warm cache)`, spec: { origin: base.url, path: '/bench', bearer: key }, pid: base.pid })
            if (wanted('jwt')) scenarios.push({ id: 'jwt-base', name: `Keygate at ${compareDir}, JWT`, spec: { origin: base.url, path: '/bench', bearer: jwt }, pid: base.pid })
            if (wanted('apikey-limited')) scenarios.push({ id: 'apikey-limited-base', name: `Keygate at ${compareDir}, API key, route rate limit counted in Redis`, spec: { origin: base.url, path: '/limited', bearer: key }, pid: base.pid })
            if (wanted('cold')) {
              const coldBasePrefix = `${prefix}cb:`
              const coldBase = await keygate('keygate-cold-base', { KEYGATE_REDIS_PREFIX: coldBasePrefix, KEYGATE_CACHE_MAX: String(Math.max(1, Math.floor(poolSize / 20))) }, compareDir)
              const file = join(dir, 'pool.txt')
              if (!existsSync(file)) await keyPool(BENCH_DATABASE_URL, s.schema, poolSize, file)
              scenarios.push({ id: 'cold-base', name: `Keygate at ${compareDir}, cold key (${poolSize} keys in turn: Redis, then PostgreSQL)`, spec: { origin: coldBase.url, path: '/bench', bearerFile: file }, pid: coldBase.pid, beforeRound: () => deleteRedisKeys(BENCH_REDIS_URL, `${coldBasePrefix}cache:*`) })
            }
          }
          for (const stack of STACKS.filter((x) => wanted(x.id))) {
            const log = join(dir, `${stack.id}${rt.tag}.log`)
            const env = stackEnv({ upstream: upstreamOrigin, databaseUrl: BENCH_DATABASE_URL, schema: s.schema, jwtSecret: creds.secret, issuer: process.env.KEYGATE_ISSUER ?? 'keygate', log })
            const p = start(stack.id, await startChildProxy(stack.script, { node: rt.node, nodeArgs, env }))
            scenarios.push({ id: `${stack.id}-apikey`, name: `${stack.name()}, ${STACK_KEY}`, spec: { origin: p.url, path: '/bench', bearer: key }, pid: p.pid })
            scenarios.push({ id: `${stack.id}-jwt`, name: `${stack.name()}, ${STACK_JWT}`, spec: { origin: p.url, path: '/bench', bearer: jwt }, pid: p.pid })
          }
          if (wanted('cold')) {
            // An in-process cache smaller than the pool, keys used in turn: every request misses it and asks
            // Redis; Redis is emptied before each round, so each key's first use in a round goes to PostgreSQL.
            const coldPrefix = `${prefix}c:`
            const cold = await keygate('keygate-cold', { KEYGATE_REDIS_PREFIX: coldPrefix, KEYGATE_CACHE_MAX: String(Math.max(1, Math.floor(poolSize / 20))) })
            const file = join(dir, 'pool.txt')
            // The pool of the first section serves the second as well.
            if (!existsSync(file)) await keyPool(BENCH_DATABASE_URL, s.schema, poolSize, file)
            scenarios.push({ id: 'cold', name: `Keygate, cold key (${poolSize} keys in turn: Redis, then PostgreSQL)`, spec: { origin: cold.url, path: '/bench', bearerFile: file }, pid: cold.pid, beforeRound: () => deleteRedisKeys(BENCH_REDIS_URL, `${coldPrefix}cache:*`) })
          }
          // Decision mode: nginx asks this Keygate (which believes it) about each request, then proxies to the upstream itself.
          const decideIds = rt.first ? ['decide-cached', 'decide-uncached'].filter(wanted) : []
          if (decideIds.length) {
            const d = await keygate('keygate-decide', { KEYGATE_REDIS_PREFIX: `${prefix}d:`, KEYGATE_TRUSTED_PROXIES: '127.0.0.1' })
            for (const id of decideIds) {
              const n = await startNginxForwardAuth(dir, d.url, upstreamOrigin, id === 'decide-cached')
              if ('skipped' in n) notes.push(`${id} skipped: ${n.skipped}`)
              else scenarios.push({ id, name: `nginx + auth_request → Keygate (decision ${id === 'decide-cached' ? 'cached, KEYGATE_DECISION_CACHE_SEC=1' : 'uncached'}), API key`, spec: { origin: start(id, n).url, path: '/bench', bearer: key }, pid: n.pid, alsoPid: d.pid })
            }
          }
          if (wanted('workers2')) {
            const w = await keygate('keygate-workers2', { KEYGATE_REDIS_PREFIX: `${prefix}w:`, KEYGATE_WORKERS: '2' })
            scenarios.push({ id: 'workers2', name: 'Keygate, KEYGATE_WORKERS=2, API key', spec: { origin: w.url, path: '/bench', bearer: key }, pid: w.pid })
          }
        }
        if (wanted('embedded')) {
          const e = start('keygate-embedded', await startBenchKeygate(`keygate-embedded${rt.tag}`, dir, { ...common, KEYGATE_DATA_DIR: join(dir, `data${rt.tag}`) }, nodeArgs, undefined, rt.node))
          const { key } = await credentials(e.url)
          scenarios.push({ id: 'embedded', name: 'Keygate, embedded default (PGlite, no Redis), API key', spec: { origin: e.url, path: '/bench', bearer: key }, pid: e.pid })
        }
        sections.push({ title: `Node ${rt.version}${rt.first ? '' : ' (the registry\'s `node` package)'}`, scenarios, results: await measure(scenarios, rt, notes, () => stops.find((p) => p.died())) })
      } finally {
        await Promise.all(stops.map((p) => p.stop()))
      }
    }
    writeResults('gateway', report(sections, generator.name, notes), compareDir ? '-compare' : BENCH_ONLY ? '-partial' : '')
  } finally {
    upstream.close()
    if (stores && !('skipped' in stores)) await stores.drop().catch(() => {})
    if (process.env.BENCH_KEEP) process.stderr.write(`bench: logs kept in ${dir}\n`)
    else rmSync(dir, { recursive: true, force: true })
  }

  /** A warm-up run of each scenario, then `rounds` interleaved rounds; the CPU the generator, this process and the proxy used in each. */
  async function measure(scenarios: Scenario[], rt: Runtime, notes: string[], dead: () => { name: string; died(): string | undefined } | undefined): Promise<Map<string, Round[]>> {
    const run = async (s: Scenario, secs: number): Promise<Round> => {
      await s.beforeRound?.()
      const cpuOf = () => {
        const a = s.pid ? treeCpuSplitMs(s.pid) : { user: 0, system: 0 }
        const b = s.alsoPid ? treeCpuSplitMs(s.alsoPid) : { user: 0, system: 0 }
        return { user: a.user + b.user, system: a.system + b.system }
      }
      const cpu0 = cpuOf()
      const generator0 = endedChildrenCpuMs()
      const self0 = process.cpuUsage()
      const t0 = performance.now()
      const result = await generator.run({ ...s.spec, connections, seconds: secs })
      const self = process.cpuUsage(self0)
      const box = { generatorMs: endedChildrenCpuMs() - generator0, upstreamMs: (self.user + self.system) / 1000, capacityMs: cores * (performance.now() - t0) }
      if (!s.pid) return { ...result, box }
      const cpu1 = cpuOf()
      const userMs = cpu1.user - cpu0.user
      const cpuMs = userMs + cpu1.system - cpu0.system
      return { ...result, cpuMs, userMs, rss: treeRss(s.pid) + (s.alsoPid ? treeRss(s.alsoPid) : 0), box: { ...box, proxyMs: cpuMs } }
    }
    for (const s of scenarios) {
      const w = await run(s, warmup)
      if (w.errors) notes.push(`${s.id}${rt.tag}: ${w.errors} errors in the warm-up`)
    }
    const results = new Map<string, Round[]>()
    const order = roundOrder(scenarios)
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 ? [...order].reverse() : order) {
        process.stderr.write(`bench: Node ${rt.version} round ${r + 1}/${rounds} ${s.id}\n`)
        results.set(s.id, [...(results.get(s.id) ?? []), await run(s, seconds)])
        const d = dead()
        if (d) throw new Error(`"${d.name}" died during the run: ${d.died()}`)
      }
    }
    return results
  }
}

function report(sections: Section[], generatorName: string, notes: string[]): string {
  const cpu = cpus()
  const nginx = sections.map((s) => median(s.results, 'nginx')).find(Boolean)
  const header = [
    `Keygate benchmark, ${new Date().toISOString()}`,
    '',
    `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, shared by the load generator, the upstream, and the proxy under test. ` +
      `Load: ${generatorName}, ${connections} connections, ${rounds} interleaved round${rounds === 1 ? '' : 's'} × ${seconds} s after a ${warmup} s warm-up per path; ` +
      'each row is the median round by req/s (all rounds listed; errors summed over all). Every proxy writes one access log line per request to a file. ' +
      'Proxy CPU: user + system time of the proxy\'s processes in the round per request (steadier than req/s when the cores are busy with other work). ' +
      'Box %: the CPU time of wrk, of the bench process (the upstream) and of the proxy in the median round, as a share of what the machine\'s cores could give in it (the rest: idle, PostgreSQL, Redis, other work). ' +
      'RSS: the proxy\'s processes after a round (the largest). The stack rows are what a Node team would write instead (bench/stack-express.ts, bench/stack-fastify.ts); their names say what they do not do. ' +
      'Each section runs the Node rows on that Node; nginx, the upstream and wrk are the same in both. Reproduce: `npm run bench`.',
  ]
  const parts = sections.map((s) => {
    const targets = sectionTargets(s, nginx, cpu.length)
    const compared = comparisonLines(s)
    return `## ${s.title}\n\n${sectionTable(s, nginx)}\n\nTargets (issue 16):\n${targets.join('\n')}\n${compared.length ? `\nAgainst the code at BENCH_COMPARE_DIR, same run:\n${compared.join('\n')}\n` : ''}`
  })
  return `${header.join('\n')}\n\n${parts.join('\n')}${notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
