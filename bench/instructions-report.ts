import type { KernelCounts } from './perf-stat.ts'

/** One path of `npm run bench:instructions`. */
export interface IrRow { id: string; name: string }

/**
 * What was measured of one path: per counted round, the instructions per request of the process's main thread
 * (where JavaScript runs) and of its other threads (V8's GC helpers and compilers, libuv's pool); per native
 * round, CPU µs per request, req/s and the kernel's counts per request.
 */
export interface IrMeasured { main: number[]; other: number[]; cpuUs: number[]; rps: number[]; kernel: KernelCounts[]; errors: number }

export interface IrSettings { machine: string; node: string; rounds: number; requests: number; connections: number; warmup: number; rewarm: number; generator: string; seconds: number }

export const emptyMeasured = (): IrMeasured => ({ main: [], other: [], cpuUs: [], rps: [], kernel: [], errors: 0 })

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (!s.length) return NaN
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

/** Instructions per request of each round, every thread. */
const totals = (m: IrMeasured) => m.main.map((x, i) => x + (m.other[i] ?? 0))

/**
 * A path's figure: instructions per request over every thread, its median round. The early rounds still carry
 * V8's optimising compiler on its own threads, and an old-generation collection (hundreds of millions of
 * instructions) falls in whichever round crosses its threshold: the median is the steady request, the mean of the
 * rounds (shown beside it) the same with those.
 */
export function allThreads(m: IrMeasured): number {
  return median(totals(m))
}

export function allThreadsMean(m: IrMeasured): number {
  return mean(totals(m))
}

/** The markdown of the run: the table, then the lines of issues 16 and 18 that it checks. */
export function irReport(rows: readonly IrRow[], measured: ReadonlyMap<string, IrMeasured>, s: IrSettings, date = new Date()): string[] {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const signed = (n: number, text: string) => `${n >= 0 ? '+' : ''}${text}`
  const base = measured.get('apikey')
  // µs per instruction, natively, on the API-key row: its CPU time (user + system) per request ÷ its instructions (median round).
  const scale = base && base.main.length && base.cpuUs.length ? median(base.cpuUs) / allThreads(base) : undefined
  const lines = [
    `Keygate instructions per request, ${date.toISOString()}`,
    '',
    `Machine: ${s.machine}; Node ${s.node}. Counted: valgrind --tool=callgrind, every thread of the proxy's process, ${s.rounds} interleaved rounds of ${s.requests} requests ` +
      `over ${s.connections} keep-alive connections, after ${s.warmup} warm-up requests per path and each just after ${s.rewarm} uncounted ones; user-space instructions only ` +
      '(the kernel\'s side of each request is not counted). All threads: the median round, then the mean of the rounds (which also carries the optimising compiler\'s work of the first rounds and any old-generation collection, in whichever round it fell). ' +
      'Main thread: where the JavaScript runs; other threads: V8\'s compiler and GC helpers, libuv\'s pool. ' +
      `Native: ${s.generator}, 50 connections, ${s.rounds} rounds × ${s.seconds} s: CPU time (user + system) of the proxy per request, and the kernel's counts of its system calls, ` +
      'context switches and page faults per request (perf stat, software events; medians). ' +
      'Δ µs: the difference in all-thread instructions from the API-key row at that row\'s native rate (CPU µs per request ÷ instructions per request), kernel time included, so on the high side. ' +
      'Reproduce: `npm run bench:instructions`.',
    '',
    '| path | instructions / request, all threads (median) | all threads (mean) | main thread (median; rounds) | other threads (median; rounds) | Δ vs API key | Δ µs (estimate) | native CPU µs / request (median; rounds) | native req/s | system calls / request | context switches / request | page faults / request | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const row of rows) {
    const m = measured.get(row.id)
    if (!m) continue
    const kernel = (event: keyof KernelCounts) => (m.kernel.length ? median(m.kernel.map((k) => k[event])).toFixed(2) : '–')
    const all = allThreads(m)
    const delta = base && row.id !== 'apikey' ? all - allThreads(base) : undefined
    const deltaText = delta === undefined ? '–' : signed(delta, `${fmt(delta)} (${((delta / allThreads(base!)) * 100).toFixed(1)} %)`)
    const us = delta === undefined || scale === undefined ? '–' : signed(delta, (delta * scale).toFixed(1))
    const native = m.cpuUs.length ? `${median(m.cpuUs).toFixed(0)} (${m.cpuUs.map((x) => x.toFixed(0)).join(', ')})` : '–'
    lines.push(`| ${row.name} | ${fmt(all)} | ${fmt(allThreadsMean(m))} | ${fmt(median(m.main))} (${m.main.map(fmt).join(', ')}) | ${fmt(median(m.other))} (${m.other.map(fmt).join(', ')}) | ${deltaText} | ${us} | ${native} | ${m.rps.length ? fmt(median(m.rps)) : '–'} | ${kernel('raw_syscalls:sys_enter')} | ${kernel('context-switches')} | ${kernel('page-faults')} | ${m.errors} |`)
  }
  lines.push('')
  const limited = measured.get('apikey-limited')
  const jwt = measured.get('jwt')
  if (base && limited && scale !== undefined) {
    const d = allThreads(limited) - allThreads(base)
    const dMean = allThreadsMean(limited) - allThreadsMean(base)
    lines.push(`- Issue 18, a route rate limit costs ≤ 10 µs more CPU per request: ${(d * scale).toFixed(1)} µs (${signed(d, fmt(d))} instructions, all threads, median rounds; of the means: ${signed(dMean, fmt(dMean))}, ${(dMean * scale).toFixed(1)} µs) — ${d * scale <= 10 ? 'met' : '**not met**'}.`)
  }
  if (base && jwt) {
    const r = allThreads(jwt) / allThreads(base) - 1
    lines.push(`- Issue 16, JWT within 10 % of the API-key path: ${signed(r, (r * 100).toFixed(1))} % in instructions — ${Math.abs(r) <= 0.1 ? 'met' : '**not met**'}.`)
  }
  const errors = rows.reduce((n, r) => n + (measured.get(r.id)?.errors ?? 0), 0)
  lines.push(`- Zero errors: ${errors} — ${errors === 0 ? 'met' : '**not met**'}.`)
  return lines
}
