import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { BENCH_USER, credentials, deleteRedisKeys, keyPool, sharedStores } from './fixtures.ts'
import { nodeArgs as runArgs } from '../scripts/entry-points.ts'
import { startBenchKeygate, type BenchKeygate } from './keygate-process.ts'
import type { LoadResult } from './load.ts'
import { startNginx, type RunningNginx } from './nginx.ts'
import { startNginxForwardAuth } from './nginx-forward-auth.ts'
import { treeCpuMs, treeRss } from './system.ts'
import { loadGenerator, type LoadSpec } from './wrk.ts'

/**
 * `npm run bench`: Keygate beside nginx and the direct path, in one run on one machine. Starts a minimal
 * upstream (Node `http`, ~200-byte JSON) in this process, nginx in front of it, a bare Node proxy (the floor
 * any Node gateway stands on, see bare-proxy.ts), and Keygate processes on the local PostgreSQL and Redis and
 * on the embedded default; then drives every path with wrk at 50 connections, in interleaved rounds so drift
 * hits every candidate alike (a warm-up run first). Prints one markdown table, with the targets of issue 7
 * checked under it, and writes it under bench/results/.
 *
 * BENCH_SECONDS (10 per round), BENCH_ROUNDS (2), BENCH_WARMUP (2 s), BENCH_CONNECTIONS (50), BENCH_POOL (2000
 * keys for the cold path), BENCH_ONLY (scenario ids, comma-separated: direct,nginx,bare,apikey,apikey-limited,jwt,cold,
 * embedded,workers2,decide-cached,decide-uncached), BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_NODE_ARGS (extra node arguments for the gateways,
 * such as `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_KEEP=1 (keep the gateways' logs), BENCH_COMPARE_DIR (another
 * checkout, such as the code before a change: its gateway runs beside this one on the same database, as the
 * scenarios apikey-base and jwt-base).
 */
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const warmup = Number(process.env.BENCH_WARMUP ?? 2)
const poolSize = Number(process.env.BENCH_POOL ?? 2000)
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
const compareDir = process.env.BENCH_COMPARE_DIR
// 181 bytes of JSON.
const body = JSON.stringify({ id: 'c1', title: 'hello', items: Array.from({ length: 8 }, (_, i) => ({ n: i, ok: true })) })

/** `pid`: the proxy's process (its RSS and CPU time are reported); `alsoPid`: a second one counted with it (decision mode's Keygate). */
interface Scenario { id: string; name: string; spec: Omit<LoadSpec, 'connections' | 'seconds'>; pid?: number; alsoPid?: number; beforeRound?: () => Promise<void> }
type Round = LoadResult & { rss?: number; cpuMs?: number }

const wanted = (id: string) => !only || only.has(id)

async function main() {
  const upstream = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  const upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-'))
  const config = join(dir, 'keygate.yaml')
  writeFileSync(config, `upstreams:\n  admin: { url: "internal:admin" }\n  bench: { url: "${upstreamOrigin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }\n  - { name: auth, prefix: /api/v1/auth, upstream: admin }\n  - { name: bench, prefix: /bench, upstream: bench }\n  - { name: bench-limited, prefix: /limited, upstream: bench, rate_limit: { limit: 1000000, window_seconds: 60 } }\n`)
  const common = { KEYGATE_CONFIG: config, KEYGATE_BOOTSTRAP_USERNAME: BENCH_USER.username, KEYGATE_BOOTSTRAP_EMAIL: 'bench@example.com', KEYGATE_BOOTSTRAP_PASSWORD: BENCH_USER.password, KEYGATE_ACCESS_TOKEN_TTL: '3600', KEYGATE_MAX_KEYS_PER_USER: '10' }

  const notes: string[] = []
  const gateways: BenchKeygate[] = []
  const children: Array<() => Promise<void>> = []
  let nginx: RunningNginx | undefined
  let stores: Awaited<ReturnType<typeof sharedStores>> | undefined
  const scenarios: Scenario[] = []
  try {
    const generator = loadGenerator(dir)
    if (wanted('direct')) scenarios.push({ id: 'direct', name: 'direct (no proxy)', spec: { origin: upstreamOrigin, path: '/bench' } })
    if (wanted('nginx')) {
      const n = await startNginx(dir, upstreamOrigin)
      if ('skipped' in n) notes.push(`nginx skipped: ${n.skipped}`)
      else {
        nginx = n
        scenarios.push({ id: 'nginx', name: `nginx ${n.version} (1 worker, keep-alive upstream)`, spec: { origin: n.url, path: '/bench' }, pid: n.pid })
      }
    }
    if (wanted('bare')) {
      const bare = await startBareProxy(upstreamOrigin)
      children.push(bare.stop)
      scenarios.push({ id: 'bare', name: 'bare Node proxy (http server + undici dispatch, nothing else)', spec: { origin: bare.url, path: '/bench' }, pid: bare.pid })
    }
    const needPg = ['apikey', 'jwt', 'cold', 'workers2', 'decide-cached', 'decide-uncached'].filter(wanted)
    if (needPg.length) {
      stores = await sharedStores(databaseUrl, redisUrl)
      if ('skipped' in stores) notes.push(`${needPg.join(', ')} skipped: ${stores.skipped}`)
      else {
        const s = stores
        const pgEnv = { ...common, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: s.schema, REDIS_URL: redisUrl }
        // Started one after the other: the first creates the schema's tables and the bench user.
        const kg = await startBenchKeygate('keygate-pg', dir, { ...pgEnv, KEYGATE_REDIS_PREFIX: `${s.prefix}a:` }, nodeArgs)
        gateways.push(kg)
        const { jwt, key } = await credentials(kg.url)
        if (wanted('apikey')) scenarios.push({ id: 'apikey', name: 'Keygate, API key (warm cache)', spec: { origin: kg.url, path: '/bench', bearer: key }, pid: kg.pid })
        if (wanted('jwt')) scenarios.push({ id: 'jwt', name: 'Keygate, JWT', spec: { origin: kg.url, path: '/bench', bearer: jwt }, pid: kg.pid })
        // The same key on a route with a rate limit (never reached): what counting in Redis costs per request.
        if (wanted('apikey') || wanted('apikey-limited')) scenarios.push({ id: 'apikey-limited', name: 'Keygate, API key, route rate limit counted in Redis', spec: { origin: kg.url, path: '/limited', bearer: key }, pid: kg.pid })
        if (compareDir) {
          const base = await startBenchKeygate('keygate-base', dir, { ...pgEnv, KEYGATE_REDIS_PREFIX: `${s.prefix}b:` }, nodeArgs, compareDir)
          gateways.push(base)
          if (wanted('apikey')) scenarios.push({ id: 'apikey-base', name: `Keygate at ${compareDir}, API key (warm cache)`, spec: { origin: base.url, path: '/bench', bearer: key }, pid: base.pid })
          if (wanted('jwt')) scenarios.push({ id: 'jwt-base', name: `Keygate at ${compareDir}, JWT`, spec: { origin: base.url, path: '/bench', bearer: jwt }, pid: base.pid })
        }
        if (wanted('cold')) {
          // An in-process cache smaller than the pool, keys used in turn: every request misses it and asks
          // Redis; Redis is emptied before each round, so each key's first use in a round goes to PostgreSQL.
          const coldPrefix = `${s.prefix}c:`
          const cold = await startBenchKeygate('keygate-cold', dir, { ...pgEnv, KEYGATE_REDIS_PREFIX: coldPrefix, KEYGATE_CACHE_MAX: String(Math.max(1, Math.floor(poolSize / 20))) }, nodeArgs)
          gateways.push(cold)
          const file = join(dir, 'pool.txt')
          await keyPool(databaseUrl, s.schema, poolSize, file)
          scenarios.push({ id: 'cold', name: `Keygate, cold key (${poolSize} keys in turn: Redis, then PostgreSQL)`, spec: { origin: cold.url, path: '/bench', bearerFile: file }, pid: cold.pid, beforeRound: () => deleteRedisKeys(redisUrl, `${coldPrefix}cache:*`) })
        }
        // Decision mode: nginx asks this Keygate (which believes it) about each request, then proxies to the upstream itself.
        const decideIds = ['decide-cached', 'decide-uncached'].filter(wanted)
        if (decideIds.length) {
          const d = await startBenchKeygate('keygate-decide', dir, { ...pgEnv, KEYGATE_REDIS_PREFIX: `${s.prefix}d:`, KEYGATE_TRUSTED_PROXIES: '127.0.0.1' }, nodeArgs)
          gateways.push(d)
          for (const id of decideIds) {
            const n = await startNginxForwardAuth(dir, d.url, upstreamOrigin, id === 'decide-cached')
            if ('skipped' in n) notes.push(`${id} skipped: ${n.skipped}`)
            else {
              children.push(n.stop)
              scenarios.push({ id, name: `nginx + auth_request → Keygate (decision ${id === 'decide-cached' ? 'cached, KEYGATE_DECISION_CACHE_SEC=1' : 'uncached'}), API key`, spec: { origin: n.url, path: '/bench', bearer: key }, pid: n.pid, alsoPid: d.pid })
            }
          }
        }
        if (wanted('workers2')) {
          const w = await startBenchKeygate('keygate-workers2', dir, { ...pgEnv, KEYGATE_REDIS_PREFIX: `${s.prefix}w:`, KEYGATE_WORKERS: '2' }, nodeArgs)
          gateways.push(w)
          scenarios.push({ id: 'workers2', name: 'Keygate, KEYGATE_WORKERS=2, API key', spec: { origin: w.url, path: '/bench', bearer: key }, pid: w.pid })
        }
      }
    }
    if (wanted('embedded')) {
      const e = await startBenchKeygate('keygate-embedded', dir, { ...common, KEYGATE_DATA_DIR: join(dir, 'data') }, nodeArgs)
      gateways.push(e)
      const { key } = await credentials(e.url)
      scenarios.push({ id: 'embedded', name: 'Keygate, embedded default (PGlite, no Redis), API key', spec: { origin: e.url, path: '/bench', bearer: key }, pid: e.pid })
    }

    const run = async (s: Scenario, secs: number): Promise<Round> => {
      await s.beforeRound?.()
      const cpuOf = () => (s.pid ? treeCpuMs(s.pid) : 0) + (s.alsoPid ? treeCpuMs(s.alsoPid) : 0)
      const cpu0 = cpuOf()
      const result = await generator.run({ ...s.spec, connections, seconds: secs })
      return s.pid ? { ...result, cpuMs: cpuOf() - cpu0, rss: treeRss(s.pid) + (s.alsoPid ? treeRss(s.alsoPid) : 0) } : result
    }
    for (const s of scenarios) {
      const w = await run(s, warmup)
      if (w.errors) notes.push(`${s.id}: ${w.errors} errors in the warm-up`)
    }
    const results = new Map<string, Round[]>()
    for (let r = 0; r < rounds; r++) {
      for (const s of scenarios) {
        process.stderr.write(`bench: round ${r + 1}/${rounds} ${s.id}\n`)
        const result = await run(s, seconds)
        results.set(s.id, [...(results.get(s.id) ?? []), result])
        const dead = gateways.find((g) => g.died())
        if (dead) throw new Error(`keygate "${dead.name}" died during the run: ${dead.died()}`)
      }
    }
    const table = report(scenarios, results, generator.name, notes)
    process.stdout.write(table)
    mkdirSync('bench/results', { recursive: true })
    const file = `bench/results/gateway-${new Date().toISOString().slice(0, 10)}${compareDir ? '-compare' : only ? '-partial' : ''}.md`
    writeFileSync(file, table)
    process.stderr.write(`bench: written to ${file}\n`)
  } finally {
    await Promise.all(gateways.map((g) => g.stop()))
    await nginx?.stop()
    await Promise.all(children.map((stop) => stop()))
    upstream.close()
    if (stores && !('skipped' in stores)) await stores.drop().catch(() => {})
    if (process.env.BENCH_KEEP) process.stderr.write(`bench: logs kept in ${dir}\n`)
    else rmSync(dir, { recursive: true, force: true })
  }
}

/** The median round of each scenario by req/s (errors summed over every round), and the targets of issue 7. */
/** `bench/bare-proxy.ts` as a child process. */
function startBareProxy(upstream: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, runArgs('bench/bare-proxy.ts', [upstream], 'source'), { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bare proxy exited with ${code}`)))
    child.stdout.once('data', (d: Buffer) => {
      const m = /listening (\S+)/.exec(d.toString())
      if (!m) return reject(new Error(`bare proxy said ${d.toString()}`))
      resolve({ url: m[1]!, pid: child.pid!, stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM') }) })
    })
  })
}

function report(scenarios: Scenario[], results: Map<string, Round[]>, generatorName: string, notes: string[]): string {
  const median = (id: string) => {
    const list = [...(results.get(id) ?? [])].sort((a, b) => a.rps - b.rps)
    return list[Math.floor((list.length - 1) / 2)]
  }
  const direct = median('direct')
  const nginx = median('nginx')
  const ratio = (x: LoadResult, base?: LoadResult) => (base ? (x.rps / base.rps).toFixed(2) : '–')
  const lines = [
    '| path | req/s | rounds (req/s) | p50 ms | p99 ms | max ms | errors | × nginx | × direct | proxy CPU µs/req | RSS MiB |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...scenarios.map((s) => {
      const all = results.get(s.id)!
      const m = median(s.id)!
      const errors = all.reduce((n, x) => n + x.errors, 0)
      const rss = all.map((x) => x.rss ?? 0).reduce((a, b) => Math.max(a, b), 0)
      const cpu = m.cpuMs === undefined ? '–' : ((m.cpuMs * 1000) / m.requests).toFixed(0)
      return `| ${s.name} | ${m.rps.toFixed(0)} | ${all.map((x) => x.rps.toFixed(0)).join(', ')} | ${m.p50.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.max.toFixed(1)} | ${errors} | ${ratio(m, nginx)} | ${ratio(m, direct)} | ${cpu} | ${rss ? (rss / 2 ** 20).toFixed(0) : '–'} |`
    }),
  ]
  const targets: string[] = []
  const apikey = median('apikey')
  const jwt = median('jwt')
  const cold = median('cold')
  const mark = (ok: boolean) => (ok ? 'met' : '**not met**')
  if (apikey && nginx) {
    targets.push(`- API key ≥ 0.60× nginx req/s: ${(apikey.rps / nginx.rps).toFixed(2)}× — ${mark(apikey.rps >= 0.6 * nginx.rps)}`)
    targets.push(`- API key added p99 ≤ 3 ms over nginx: ${(apikey.p99 - nginx.p99).toFixed(2)} ms — ${mark(apikey.p99 - nginx.p99 <= 3)}`)
  }
  if (apikey && jwt) targets.push(`- JWT within 10 % of API key: ${(((jwt.rps - apikey.rps) / apikey.rps) * 100).toFixed(1)} % — ${mark(Math.abs(jwt.rps - apikey.rps) <= 0.1 * apikey.rps)}`)
  const decideCached = median('decide-cached')
  if (decideCached && nginx) targets.push(`- nginx + auth_request → Keygate, decision cached ≥ 0.80× nginx req/s (issue 17): ${(decideCached.rps / nginx.rps).toFixed(2)}× — ${mark(decideCached.rps >= 0.8 * nginx.rps)}`)
  const limited = median('apikey-limited')
  if (apikey && limited && apikey.cpuMs !== undefined && limited.cpuMs !== undefined) {
    const extra = (limited.cpuMs * 1000) / limited.requests - (apikey.cpuMs * 1000) / apikey.requests
    targets.push(`- rate limit ≤ 10 µs more gateway CPU per request (issue 18): ${extra.toFixed(1)} µs — ${mark(extra <= 10)}`)
  }
  if (cold) targets.push(`- cold key p99 ≤ 5 ms: ${cold.p99.toFixed(2)} ms — ${mark(cold.p99 <= 5)}`)
  const totalErrors = [...results.values()].flat().reduce((n, x) => n + x.errors, 0)
  targets.push(`- zero errors in every scenario: ${totalErrors} — ${mark(totalErrors === 0)}`)
  const cpu = cpus()
  const header = [
    `Keygate benchmark, ${new Date().toISOString()}`,
    '',
    `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, shared by the load generator, the upstream, and the proxy under test. ` +
      `Node ${process.version}; load: ${generatorName}, ${connections} connections, ${rounds} interleaved rounds × ${seconds} s after a ${warmup} s warm-up per path; ` +
      'each row is the median round by req/s (all rounds listed; errors summed over all). Every proxy writes one access log line per request to a file. ' +
      'Proxy CPU: user + system time of the proxy\'s processes in the round per request (steadier than req/s when the cores are busy with other work). ' +
      'RSS: the proxy\'s processes after a round (the largest). Reproduce: `npm run bench`.',
  ]
  return `${header.join('\n')}\n\n${lines.join('\n')}\n\nTargets (issue 7):\n${targets.join('\n')}\n${notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
