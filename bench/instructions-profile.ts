/**
 * Where a thread's instructions went: the self cost of each function in a callgrind dump, with the functions
 * V8 compiled at run time (which callgrind knows only by address) named from the process's perf map
 * (`node --perf-basic-prof` writes `/tmp/perf-<pid>.map`). Counted, so two runs of the same code give the same
 * profile whatever else the machine does: a change's effect on one function can be read off directly.
 */

export interface ProfileEntry {
  name: string
  /** Instructions executed in the function itself (callees not included; code V8 inlined into it is). */
  self: number
}

/** One code object of a perf map: `<start hex> <size hex> <name>`. */
interface MapEntry { start: number; end: number; name: string }

/**
 * A name as V8's perf map writes it (`JS:*handle file:///app/dist/gateway/pipeline.js:63:33`), shortened to the
 * function and its file (`handle pipeline.js:63:33`): the kind and the tier mark (`*`, `~`, `^`, `+`, Node 24's `'`)
 * dropped, so a function's tiers count as one, and the directories dropped.
 */
export function jsName(symbol: string): string {
  return symbol.replace(/^(JS|LazyCompile|Function|Script):[*~^+']?/, '').replace(/ (file:\/\/)?\S*\/(?=[^/]+:\d+)/, ' ')
}

/** Parses a perf map; a later entry for the same address wins (V8 reuses the space of code it dropped). */
export function parsePerfMap(text: string): MapEntry[] {
  const entries: MapEntry[] = []
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.*)$/.exec(line)
    if (!m) continue
    const start = parseInt(m[1]!, 16)
    entries.push({ start, end: start + parseInt(m[2]!, 16), name: m[3]! })
  }
  return entries
}

/** The name of the code object holding `address`: the last one written that covers it. */
export function resolver(entries: readonly MapEntry[]): (address: number) => string | undefined {
  const sorted = entries.map((e, order) => ({ ...e, order })).sort((a, b) => a.start - b.start || b.order - a.order)
  return (address) => {
    let lo = 0
    let hi = sorted.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (sorted[mid]!.start <= address) { found = mid; lo = mid + 1 } else hi = mid - 1
    }
    // Code objects may overlap when space was reused: look back for the latest one that covers the address.
    let best: (typeof sorted)[number] | undefined
    for (let i = found; i >= 0 && i > found - 64; i--) {
      const e = sorted[i]!
      if (address < e.end && (!best || e.order > best.order)) best = e
    }
    return best?.name
  }
}

/**
 * Self cost per function of one callgrind dump (`--dump-instr=no`, one event: Ir). Call lines (the line after
 * `calls=`) carry the callee's inclusive cost and are not counted as the caller's own.
 */
export function selfCosts(dump: string): Map<string, number> {
  const names = new Map<string, string>()
  const costs = new Map<string, number>()
  let fn = '(none)'
  let skipNext = false
  const name = (ref: string): string => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(ref)
    if (!m) return ref
    if (m[2] !== undefined) names.set(m[1]!, m[2])
    return names.get(m[1]!) ?? ref
  }
  for (const line of dump.split('\n')) {
    if (line.startsWith('fn=')) { fn = name(line.slice(3)); continue }
    if (line.startsWith('cfn=')) { name(line.slice(4)); continue }
    if (line.startsWith('calls=')) { skipNext = true; continue }
    const c = line.charCodeAt(0)
    const isCost = (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42 // digit, +, -, *
    if (!isCost) continue
    if (skipNext) { skipNext = false; continue }
    const parts = line.split(' ')
    const ir = Number(parts[1] ?? 0)
    if (ir) costs.set(fn, (costs.get(fn) ?? 0) + ir)
  }
  return costs
}

/**
 * The profile of a dump: functions by self cost, addresses named from the perf map, entries of the same name
 * (a function compiled more than once) added together.
 */
export function profile(dump: string, perfMap: string): ProfileEntry[] {
  const resolve = resolver(parsePerfMap(perfMap))
  const merged = new Map<string, number>()
  const nameOf = (part: string): string => {
    const address = /^0x([0-9a-fA-F]+)$/.exec(part)
    const named = address ? resolve(parseInt(address[1]!, 16)) ?? `${part} (not in the perf map)` : part
    return jsName(named)
  }
  for (const [fn, self] of selfCosts(dump)) {
    // `--separate-callers=n` names a function with its callers: `f'caller'caller's caller` (a recursion level is `'2`).
    const key = fn.split("'").map((part) => (/^\d+$/.test(part) ? part : nameOf(part))).join(' ← ')
    merged.set(key, (merged.get(key) ?? 0) + self)
  }
  return [...merged].map(([name, self]) => ({ name, self })).sort((a, b) => b.self - a.self)
}
