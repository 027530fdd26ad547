import { jsName } from './instructions-profile.ts'

/**
 * Where a proxy's CPU time per request goes, from `perf script`'s samples (`perf record -e cpu-clock -g`, node
 * run with `--perf-basic-prof` so compiled JavaScript has names): each sample is charged to a part of the stack
 * that answers "whose work was it", then turned into microseconds per request with the process's measured CPU time.
 *
 * - kernel: the sample stopped in the kernel (socket reads and writes, TCP, scheduling);
 * - garbage collection: in V8's collector, on the main thread or a helper;
 * - otherwise the nearest JavaScript function on the stack (so V8's builtins, inline caches and runtime calls
 *   count for the function that called them), by where its file is: the proxy's own code (Keygate's, or the
 *   bench's bare proxy), undici, other packages,
 *   Node's library (the HTTP server, streams, timers, the event loop's JavaScript side);
 * - no JavaScript on the stack: Node's native side (the HTTP parser, libuv, V8 compiling).
 */

export interface Sample {
  /** Symbols from the leaf outwards; kernel frames marked with `[k]`. */
  frames: string[]
}

/**
 * Parses `perf script -F ip,sym,dso` output: one sample per blank-line separated block of `addr sym+off (dso)`
 * lines. `jit` names an address in compiled JavaScript (dso `/tmp/perf-<pid>.map`) again: perf takes the first
 * entry of the map that covers it, which after V8 reused the space of code it dropped is the wrong one.
 */
export function parseSamples(text: string, jit?: (address: number) => string | undefined): Sample[] {
  const samples: Sample[] = []
  let frames: string[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed) {
      if (frames.length) samples.push({ frames })
      frames = []
      continue
    }
    const m = /^([0-9a-f]+) (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$/.exec(trimmed)
    if (!m) continue
    const dso = m[3]!
    if (dso.includes('kernel.kallsyms') || dso.startsWith('[kernel')) frames.push(`[k] ${m[2]}`)
    else if (jit && /\/perf-\d+\.map$/.test(dso)) frames.push(jit(parseInt(m[1]!, 16)) ?? m[2]!)
    else frames.push(m[2]!)
  }
  if (frames.length) samples.push({ frames })
  return samples
}

export const CATEGORIES = ['kernel', 'garbage collection', 'the proxy\'s own code', 'undici', 'other packages', 'Node library', 'Node native'] as const
export type Category = (typeof CATEGORIES)[number]

const GC = /^(v8::internal::(Scavenger|ScavengerCollector|MarkCompactCollector|MinorMarkCompactCollector|ConcurrentMarking|IncrementalMarking|Sweeper|MarkingVisitorBase|MainMarkingVisitor|ConcurrentMarkingVisitor|MarkingWorklists|Heap::(Collect|Scavenge|MarkCompact|Evacuate))|heap::base::)/

/** Whose work a sample was, and the JavaScript function it is charged to (when one is on the stack). */
export function attribute(sample: Sample, ownCode: RegExp): { category: Category; fn?: string } {
  const leaf = sample.frames[0] ?? ''
  if (leaf.startsWith('[k] ')) return { category: 'kernel' }
  if (GC.test(leaf)) return { category: 'garbage collection' }
  for (const frame of sample.frames) {
    if (!/^(JS|LazyCompile|Function):/.test(frame)) continue
    const fn = jsName(frame)
    if (ownCode.test(frame)) return { category: 'the proxy\'s own code', fn }
    if (frame.includes('/node_modules/undici/') || frame.includes('wasm-function')) return { category: 'undici', fn }
    if (frame.includes('/node_modules/')) return { category: 'other packages', fn }
    return { category: 'Node library', fn }
  }
  if (sample.frames.some((f) => f.includes('wasm-function'))) return { category: 'undici' }
  return { category: 'Node native' }
}

export interface CpuProfile {
  /** CPU µs per request, user and system, as the process's counters gave them. */
  userUs: number
  systemUs: number
  /** µs per request by category and by JavaScript function (the sample share of the measured CPU time). */
  categories: Map<Category, number>
  functions: Map<string, number>
  samples: number
}

/** Spreads the measured CPU time per request over the samples' attributions. */
export function cpuProfile(samples: readonly Sample[], cpu: { userUs: number; systemUs: number }, ownCode: RegExp): CpuProfile {
  const categories = new Map<Category, number>(CATEGORIES.map((c) => [c, 0]))
  const functions = new Map<string, number>()
  const perSample = samples.length ? (cpu.userUs + cpu.systemUs) / samples.length : 0
  for (const s of samples) {
    const { category, fn } = attribute(s, ownCode)
    categories.set(category, categories.get(category)! + perSample)
    if (fn) {
      const key = `${fn} (${category})`
      functions.set(key, (functions.get(key) ?? 0) + perSample)
    }
  }
  return { ...cpu, categories, functions, samples: samples.length }
}

const us = (v: number | undefined) => (v ?? 0).toFixed(2)
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`

/**
 * The markdown tables: each category for every column (the floors first, Keygate last) with Keygate's difference
 * from each floor, then the JavaScript functions that cost Keygate the most more than the nearest floor (the
 * column before it).
 */
export function cpuProfileReport(columns: ReadonlyArray<{ label: string; profile: CpuProfile }>, top = 25): string[] {
  const keygate = columns.at(-1)!
  const floors = columns.slice(0, -1)
  const nearest = floors.at(-1)!
  const total = (p: CpuProfile) => p.userUs + p.systemUs
  const row = (name: string, value: (p: CpuProfile) => number | undefined) =>
    `| ${name} | ${columns.map((c) => us(value(c.profile))).join(' | ')} | ${floors.map((f) => signed((value(keygate.profile) ?? 0) - (value(f.profile) ?? 0))).join(' | ')} |`
  const out = [
    `| µs / request | ${columns.map((c) => c.label).join(' | ')} | ${floors.map((f) => `Keygate − ${f.label}`).join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|${floors.map(() => '---:').join('|')}|`,
    row('CPU time (user + system)', total),
    row('of it user', (p) => p.userUs),
    row('of it system', (p) => p.systemUs),
    ...CATEGORIES.map((c) => row(c, (p) => p.categories.get(c))),
    `| samples | ${columns.map((c) => c.profile.samples).join(' | ')} | ${floors.map(() => '').join(' | ')} |`,
  ]
  const names = new Set([...nearest.profile.functions.keys(), ...keygate.profile.functions.keys()])
  const diffs = [...names].map((n) => ({ n, a: nearest.profile.functions.get(n) ?? 0, b: keygate.profile.functions.get(n) ?? 0 })).sort((x, y) => y.b - y.a - (x.b - x.a))
  out.push('', `The ${top} JavaScript functions (with the builtins and runtime calls they make) that cost Keygate the most more than the ${nearest.label}:`, '', `| function | ${nearest.label} µs / request | Keygate µs / request | Δ |`, '|---|---:|---:|---:|')
  for (const d of diffs.slice(0, top)) out.push(`| \`${d.n.replace(/\|/g, '\\|')}\` | ${us(d.a)} | ${us(d.b)} | ${signed(d.b - d.a)} |`)
  return out
}
