import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startChildProxy } from './child-proxy.ts'
import { BENCH_DATABASE_URL, BENCH_ONLY, BENCH_REDIS_URL, benchGatewayEnv, credentials, sharedStores } from './fixtures.ts'
import { startBenchKeygate } from './keygate-process.ts'
import { load } from './load.ts'
import { emptyMeasured, irReport, type IrMeasured } from './instructions-report.ts'
import { profile, type ProfileEntry } from './instructions-profile.ts'
import { perfStat, perRequest } from './perf-stat.ts'
import { dropPerfMap, ensureBinary, perfMapNodeArgs, treeCpuMs, writeResults } from './system.ts'
import { startUpstream } from './upstream.ts'
import { loadGenerator } from './wrk.ts'

/**
 * `npm run bench:instructions`: what each path costs in instructions per request, counted by valgrind's
 * callgrind, beside the CPU time per request the same paths take natively.
 *
 * On a machine whose cores are shared with other tenants, CPU time per request moves by tens of percent from one
 * round to the next, so a difference of a few microseconds between two paths (the rate limit's cost, JWT against
 * API key) cannot be told from the noise in `npm run bench`. Instructions executed are the same whatever else the
 * machine does. Each proxy runs under `valgrind --tool=callgrind` (every thread of the process counted: the
 * event loop, V8's compiler and GC threads, libuv's pool); after a warm-up, the counters are zeroed, a fixed number
 * of requests is sent, and the counters are read (`callgrind_control`, one count per thread), in interleaved rounds
 * (every other one in reverse order), each just after a short uncounted re-warm of its row (a process idle for
 * minutes under valgrind has had V8 drop compiled code). A path's figure is its median round over every thread
 * (`instructions-report.ts`); the mean of the rounds beside it also carries the optimising compiler's first
 * rounds and any old-generation collection (hundreds of millions of instructions, mostly on V8's helper threads),
 * in whichever round it fell. What this cannot
 * see: the kernel's side of each request (the socket reads and writes, about a third of a proxy's CPU time), cache
 * misses, and anything that depends on time (under valgrind the process runs ~50× slower, so time-driven batching,
 * such as the access log's writes every 10 ms and a rate-limit lease's round trips, is amortised over fewer requests
 * than natively: it errs on the expensive side).
 *
 * The same proxies then run natively for `BENCH_SECONDS` × `BENCH_ROUNDS` under wrk (as `npm run bench`) for the
 * CPU time per request; a difference in instructions is turned into microseconds at the Keygate API-key row's
 * native rate (CPU time per request ÷ instructions per request, both of this run), kernel time included, so the
 * estimate is on the high side.
 *
 * BENCH_REQUESTS (3000 per counted round), BENCH_WARMUP_REQUESTS (10000 per row first), BENCH_REWARM_REQUESTS (500,
 * sent uncounted just before each counted round), BENCH_ROUNDS (6), BENCH_SECONDS (5, each native round), BENCH_CONNECTIONS (8 under valgrind, 50 natively), BENCH_ONLY (bare,apikey,jwt,apikey-limited),
 * BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_KEEP=1 (keep the logs and dumps), BENCH_RESULTS_FILE (`bench/results/instructions-<date>.md` by default),
 * BENCH_PROFILE=<n> (the n functions with the most instructions of their own per request on each row's main thread in its
 * last counted round, compiled JavaScript named from `node --perf-basic-prof`'s map: `instructions-profile.ts`),
 * BENCH_PROFILE_CALLERS=<n> (with BENCH_PROFILE: each function named with its n callers, `f'caller'caller's caller`).
 */
const requests = Number(process.env.BENCH_REQUESTS ?? 3000)
const warmupRequests = Number(process.env.BENCH_WARMUP_REQUESTS ?? 10_000)
const rewarmRequests = Number(process.env.BENCH_REWARM_REQUESTS ?? 500)
const rounds = Number(process.env.BENCH_ROUNDS ?? 6)
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8)
const profileTop = Number(process.env.BENCH_PROFILE ?? 0)

interface Row { id: string; name: string; path: string; bearer?: string; proxy: 'bare' | 'keygate' }
interface Proxy { url: string; pid: number; died(): string | undefined; stop(): Promise<void> }

async function main() {
  const valgrind = ensureBinary('valgrind', 'valgrind')
  if (!valgrind.path) throw new Error(`${valgrind.why}: this benchmark counts instructions with valgrind's callgrind`)
  const upstream = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-ir-'))
  const stores = await sharedStores(BENCH_DATABASE_URL, BENCH_REDIS_URL)
  if ('skipped' in stores) throw new Error(stores.skipped)
  // node under callgrind, as startBenchKeygate and startChildProxy start node: every dump is `cg.<pid>.<n>`.
  const wrapper = join(dir, 'node-callgrind')
  const callers = profileTop > 0 ? ` --separate-callers=${Number(process.env.BENCH_PROFILE_CALLERS ?? 0)}` : ''
  writeFileSync(wrapper, `#!/bin/sh\nexec ${valgrind.path} --tool=callgrind --separate-threads=yes${callers} --callgrind-out-file=${dir}/cg.%p ${process.execPath} "$@" 2>>${dir}/valgrind.err\n`)
  chmodSync(wrapper, 0o755)
  const common = benchGatewayEnv(dir, upstream.origin)
  const env = { ...common, DATABASE_URL: BENCH_DATABASE_URL, DATABASE_SCHEMA: stores.schema, REDIS_URL: BENCH_REDIS_URL }
  const started: Proxy[] = []
  const start = <T extends Proxy>(p: T): T => (started.push(p), p)
  const out: string[] = []
  const notes = new Set<string>()
  try {
    // Native first: it creates the schema and the bench user, whose credentials every row uses.
    const native = { keygate: start(await startBenchKeygate('keygate-native', dir, { ...env, KEYGATE_REDIS_PREFIX: `${stores.prefix}n:` })), bare: start(await startChildProxy('bench/bare-proxy.ts', { args: [upstream.origin] })) }
    const { jwt, key } = await credentials(native.keygate.url)
    const rows: Row[] = [
      { id: 'bare', name: 'bare Node proxy (http server + undici dispatch, nothing else)', path: '/bench', proxy: 'bare' as const },
      { id: 'apikey', name: 'Keygate, API key (warm cache)', path: '/bench', bearer: key, proxy: 'keygate' as const },
      { id: 'jwt', name: 'Keygate, JWT', path: '/bench', bearer: jwt, proxy: 'keygate' as const },
      { id: 'apikey-limited', name: 'Keygate, API key, route rate limit counted in Redis', path: '/limited', bearer: key, proxy: 'keygate' as const },
    ].filter((r) => !BENCH_ONLY || BENCH_ONLY.has(r.id))
    const measured = new Map<string, IrMeasured>(rows.map((r) => [r.id, emptyMeasured()]))

    process.stderr.write('bench: starting Keygate and the bare proxy under callgrind (a minute or two)\n')
    const profiling = profileTop > 0 ? perfMapNodeArgs(dir) : []
    const counted = {
      keygate: start(await startBenchKeygate('keygate-callgrind', dir, { ...env, KEYGATE_REDIS_PREFIX: `${stores.prefix}c:` }, profiling, undefined, wrapper, 600_000)),
      bare: start(await startChildProxy('bench/bare-proxy.ts', { node: wrapper, nodeArgs: profiling, args: [upstream.origin], env: { HOST: VGDB_HOST } })),
    }
    const profiles = new Map<string, ProfileEntry[]>()
    const send = async (row: Row, url: string, n: number) => {
      const r = await load({ origin: url, path: row.path, connections, durationMs: 3_600_000, requests: n, headers: row.bearer ? () => ({ authorization: `Bearer ${row.bearer}` }) : undefined })
      measured.get(row.id)!.errors += r.errors
      const died = counted[row.proxy].died()
      if (died) throw new Error(`the ${row.proxy} proxy under callgrind ended: ${died}\n${readFileSync(join(dir, 'valgrind.err'), 'utf8').slice(-3000)}`)
    }
    for (const row of rows) {
      process.stderr.write(`bench: callgrind warm-up ${row.id} (${warmupRequests} requests)\n`)
      await send(row, counted[row.proxy].url, warmupRequests)
    }
    for (let r = 0; r < rounds; r++) {
      // Every other round in reverse order (A B, B A, …): a collection the row before started and the next one
      // finishes is not always the same row's.
      for (const row of r % 2 ? [...rows].reverse() : rows) {
        const { pid, url } = counted[row.proxy]
        // Code V8 dropped while the process served the other rows is compiled again before counting starts.
        await send(row, url, rewarmRequests)
        callgrind(['-z', String(pid)])
        await send(row, url, requests)
        const { main, other, mainDump } = dumpThreads(dir, pid)
        if (profileTop > 0 && r === rounds - 1) profiles.set(row.id, profile(readFileSync(mainDump, 'utf8'), readFileSync(`/tmp/perf-${pid}.map`, 'utf8')))
        measured.get(row.id)!.main.push(main / requests)
        measured.get(row.id)!.other.push(other / requests)
        process.stderr.write(`bench: callgrind round ${r + 1}/${rounds} ${row.id}: ${Math.round(main / requests)} + ${Math.round(other / requests)} instructions per request (main thread + others)\n`)
      }
    }
    await Promise.all([counted.keygate.stop(), counted.bare.stop()])
    for (const { pid } of [counted.keygate, counted.bare]) dropPerfMap(pid, dir)

    const generator = loadGenerator(dir)
    const perfBinary = ensureBinary('perf', 'linux-perf')
    if (!perfBinary.path) notes.add(`system calls not counted: ${perfBinary.why}`)
    for (const row of rows) await generator.run({ origin: native[row.proxy].url, path: row.path, bearer: row.bearer, connections: 50, seconds: 2 })
    for (let r = 0; r < rounds; r++) {
      for (const row of rows) {
        const { pid, url } = native[row.proxy]
        const perf = perfBinary.path ? perfStat(perfBinary.path, pid) : undefined
        if (perf) await new Promise((r) => setTimeout(r, 300)) // perf attaches to every thread
        const cpu0 = treeCpuMs(pid)
        const res = await generator.run({ origin: url, path: row.path, bearer: row.bearer, connections: 50, seconds })
        const m = measured.get(row.id)!
        if (perf) m.kernel.push(perRequest(await perf.stop(), res.requests))
        m.cpuUs.push(((treeCpuMs(pid) - cpu0) * 1000) / Math.max(1, res.requests))
        m.rps.push(res.rps)
        m.errors += res.errors
        process.stderr.write(`bench: native round ${r + 1}/${rounds} ${row.id}: ${Math.round(res.rps)} req/s\n`)
      }
    }
    const cpu = cpus()
    out.push(...irReport(rows, measured, { machine: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}`, node: process.version, rounds, requests, connections, warmup: warmupRequests, rewarm: rewarmRequests, generator: generator.name, seconds }), ...[...notes].map((n) => `- ${n}`))
    for (const row of rows) {
      const entries = profiles.get(row.id)
      if (!entries) continue
      const total = entries.reduce((sum, e) => sum + e.self, 0)
      out.push('', `### ${row.name}: main thread, last round, the ${profileTop} functions with the most instructions of their own`, '', '| instructions / request | share | function |', '|---:|---:|---|')
      for (const e of entries.slice(0, profileTop)) out.push(`| ${Math.round(e.self / requests).toLocaleString('en-US')} | ${((100 * e.self) / total).toFixed(1)} % | \`${e.name.replace(/\|/g, '\\|')}\` |`)
    }
  } finally {
    await Promise.all(started.map((p) => p.stop().catch(() => {})))
    upstream.close()
    await stores.drop().catch(() => {})
    if (process.env.BENCH_KEEP) process.stderr.write(`bench: files kept in ${dir}\n`)
    else rmSync(dir, { recursive: true, force: true })
  }
  writeResults('instructions', out.join('\n') + '\n')
}

/**
 * valgrind names the pipes `callgrind_control` talks through after the process's HOST; Keygate runs with
 * HOST=127.0.0.1 (where it listens), so the bare proxy is given the same and `callgrind_control` asks with it.
 */
const VGDB_HOST = '127.0.0.1'

function callgrind(args: string[]): string {
  return execFileSync('callgrind_control', args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HOST: VGDB_HOST } })
}

/**
 * Dumps `pid`'s counters (`callgrind_control -d`; one file per thread, `--separate-threads=yes`) and reads the
 * instructions of the main thread (the first) and of the others since the last zeroing.
 */
function dumpThreads(dir: string, pid: number): { main: number; other: number; mainDump: string } {
  const before = new Set(readdirSync(dir))
  callgrind(['-d', String(pid)])
  const dumps = readdirSync(dir).filter((f) => f.startsWith(`cg.${pid}.`) && !before.has(f))
  if (!dumps.length) throw new Error(`no new callgrind dump of ${pid} in ${dir}`)
  let main = 0
  let other = 0
  let mainDump = ''
  for (const f of dumps) {
    const m = /^(?:totals|summary): (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'))
    if (!m) throw new Error(`no totals in ${f}`)
    if (f.endsWith('-01')) { main += Number(m[1]); mainDump = join(dir, f) }
    else other += Number(m[1])
  }
  if (!mainDump) throw new Error(`no dump of the main thread among ${dumps.join(', ')}`)
  return { main, other, mainDump }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
