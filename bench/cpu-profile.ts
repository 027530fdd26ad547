import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../scripts/entry-points.ts'
import { startChildProxy } from './child-proxy.ts'
import { cpuProfile, cpuProfileReport, parseSamples, type Sample } from './cpu-profile-report.ts'
import { BENCH_DATABASE_URL, BENCH_REDIS_URL, benchGatewayEnv, credentials, sharedStores } from './fixtures.ts'
import { startBenchKeygate } from './keygate-process.ts'
import { parsePerfMap, resolver } from './instructions-profile.ts'
import { dropPerfMap, ensureBinary, perfMapNodeArgs, treeCpuSplitMs, writeResults } from './system.ts'
import { startUpstream } from './upstream.ts'
import { loadGenerator } from './wrk.ts'

/**
 * `npm run bench:profile`: where the bare Node proxy's and Keygate's CPU time per request go, side by side.
 *
 * Both run natively, with `--perf-basic-prof` (V8 writes a symbol map of the code it compiles, so samples in
 * JavaScript have names), under the same wrk load as `npm run bench` (50 connections; Keygate with a warm API
 * key on the local PostgreSQL and Redis); `perf record -e cpu-clock -g` samples each process during its rounds
 * (a software event: it works where the machine has no hardware counters). Each sample is charged to the
 * kernel, the garbage collector or the nearest JavaScript function on its stack (`cpu-profile-report.ts`), and
 * the process's measured CPU time per request is spread over the samples. What is left between Keygate and the
 * floor shows by kind (Keygate's own code, undici, Node's library, the kernel, GC) and by function. A second floor,
 * the bare proxy sending the headers Keygate sent upstream (captured from the upstream), tells what carrying them
 * costs Node and undici from what Keygate's own work costs.
 *
 * BENCH_ROUNDS (2, interleaved), BENCH_SECONDS (5 per round), BENCH_FREQUENCY (1999 samples a second),
 * BENCH_TOP (25 functions), BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_KEEP=1 (keep the recordings),
 * BENCH_RESULTS_FILE (`bench/results/cpu-profile-<date>.md` by default).
 */
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const frequency = Number(process.env.BENCH_FREQUENCY ?? 1999)
const top = Number(process.env.BENCH_TOP ?? 25)
const run = promisify(execFile)

async function main() {
  const perf = ensureBinary('perf', 'linux-perf')
  if (!perf.path) throw new Error(`${perf.why}: this profile samples with perf`)
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-profile-'))
  const upstream = await startUpstream()
  const stores = await sharedStores(BENCH_DATABASE_URL, BENCH_REDIS_URL)
  if ('skipped' in stores) throw new Error(stores.skipped)
  const nodeArgs = perfMapNodeArgs(dir)
  const started: Array<{ pid: number; stop(): Promise<void> }> = []
  const out: string[] = []
  try {
    const env = { ...benchGatewayEnv(dir, upstream.origin), DATABASE_URL: BENCH_DATABASE_URL, DATABASE_SCHEMA: stores.schema, REDIS_URL: BENCH_REDIS_URL, KEYGATE_REDIS_PREFIX: stores.prefix }
    const keygate = await startBenchKeygate('keygate-profile', dir, env, nodeArgs)
    started.push(keygate)
    const bare = await startChildProxy('bench/bare-proxy.ts', { nodeArgs, args: [upstream.origin] })
    started.push(bare)
    const { key } = await credentials(keygate.url)
    const generator = loadGenerator(dir)
    // The headers Keygate sends upstream (its request id, forwarded headers, client address, identity assertion,
    // trace context), as the upstream saw them: the second floor forwards exactly these on every request.
    await generator.run({ origin: keygate.url, path: '/bench', bearer: key, connections: 50, seconds: 2 })
    const seen = upstream.lastHeaders()
    const carried: string[] = []
    for (let i = 0; i < seen.length; i += 2) if (!['host', 'connection', 'keep-alive'].includes(seen[i]!.toLowerCase())) carried.push(seen[i]!, seen[i + 1]!)
    writeFileSync(join(dir, 'keygate-headers.json'), JSON.stringify(carried))
    const withHeaders = await startChildProxy('bench/bare-proxy.ts', { nodeArgs, args: [upstream.origin, join(dir, 'keygate-headers.json')] })
    started.push(withHeaders)
    const rows = [
      { id: 'bare', label: 'bare Node proxy', url: bare.url, pid: bare.pid, bearer: undefined as string | undefined },
      { id: 'headers', label: "bare proxy + Keygate's upstream headers", url: withHeaders.url, pid: withHeaders.pid, bearer: undefined as string | undefined },
      { id: 'keygate', label: 'Keygate', url: keygate.url, pid: keygate.pid, bearer: key },
    ]
    const measured = new Map(rows.map((r) => [r.id, { user: 0, system: 0, requests: 0, samples: [] as Sample[] }]))
    for (const row of rows.slice(0, 2)) await generator.run({ origin: row.url, path: '/bench', bearer: row.bearer, connections: 50, seconds: 2 })
    for (let r = 0; r < rounds; r++) {
      for (const row of r % 2 ? [...rows].reverse() : rows) {
        const file = join(dir, `${row.id}-${r}.data`)
        const recorder = spawn(perf.path, ['record', '-q', '-e', 'cpu-clock', '-F', String(frequency), '-g', '-p', String(row.pid), '-o', file], { stdio: 'ignore' })
        await new Promise((res) => setTimeout(res, 500)) // perf attaches to every thread
        const before = treeCpuSplitMs(row.pid)
        const res = await generator.run({ origin: row.url, path: '/bench', bearer: row.bearer, connections: 50, seconds })
        const after = treeCpuSplitMs(row.pid)
        recorder.kill('SIGINT')
        await new Promise((done) => recorder.once('exit', done))
        const m = measured.get(row.id)!
        m.user += after.user - before.user
        m.system += after.system - before.system
        m.requests += res.requests
        if (res.errors) throw new Error(`${res.errors} errors from ${row.id}`)
        const { stdout } = await run(perf.path, ['script', '-F', 'ip,sym,dso', '-i', file], { maxBuffer: 1 << 30 })
        // Not pushed as spread arguments: a long round has more samples than a call takes arguments.
        for (const sample of parseSamples(stdout, resolver(parsePerfMap(readFileSync(`/tmp/perf-${row.pid}.map`, 'utf8'))))) m.samples.push(sample)
        process.stderr.write(`bench: round ${r + 1}/${rounds} ${row.id}: ${Math.round(res.rps)} req/s\n`)
      }
    }
    // The proxies' own code: Keygate's compiled files, and the bench's bare proxy.
    const own = new RegExp(`${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/$/, '')}/(dist|bench)/`)
    const profileOf = (id: string) => {
      const m = measured.get(id)!
      return cpuProfile(m.samples, { userUs: (m.user * 1000) / m.requests, systemUs: (m.system * 1000) / m.requests }, own)
    }
    const cpu = cpus()
    out.push(
      `Keygate's CPU time per request beside the bare Node proxy's, by whose work it is, ${new Date().toISOString()}`,
      '',
      `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; Node ${process.version}; ${generator.name}, 50 connections, ${rounds} interleaved rounds × ${seconds} s per proxy; perf record -e cpu-clock at ${frequency} Hz with call graphs; Keygate with a warm API key on the local PostgreSQL and Redis (access log and metrics on, compiled build). Each sample is charged to the kernel, the garbage collector or the nearest JavaScript function on its stack (V8's builtins and runtime calls count for the function that called them); the measured CPU time per request (user + system, from /proc) is spread over the samples. Reproduce: \`npm run bench:profile\`.`,
      '',
      `The second column is the bare proxy sending, on every request, the ${carried.length / 2} headers Keygate sent upstream (${[...new Set(carried.filter((_, i) => i % 2 === 0))].join(', ')}; ${carried.reduce((n, s) => n + s.length, 0)} characters), as fixed strings: what carrying them costs Node's HTTP server and undici, apart from what it costs Keygate to make them.`,
      '',
      ...cpuProfileReport(rows.map((r) => ({ label: r.label, profile: profileOf(r.id) })), top),
    )
  } finally {
    await Promise.all(started.map((p) => p.stop().catch(() => {})))
    for (const p of started) dropPerfMap(p.pid, dir)
    upstream.close()
    await stores.drop().catch(() => {})
    if (process.env.BENCH_KEEP) process.stderr.write(`bench: files kept in ${dir}\n`)
    else rmSync(dir, { recursive: true, force: true })
  }
  writeResults('cpu-profile', out.join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
