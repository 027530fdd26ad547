import type { LoadResult } from './load.ts'
import type { LoadSpec } from './wrk.ts'

/**
 * The table of one section of `npm run bench` (one Node runtime) and the targets checked under it.
 */

/** `pid`: the proxy's process (its RSS and CPU time are reported); `alsoPid`: a second one counted with it (decision mode's Keygate). */
export interface Scenario { id: string; name: string; spec: Omit<LoadSpec, 'connections' | 'seconds'>; pid?: number; alsoPid?: number; beforeRound?: () => Promise<void> }

/**
 * One round of one scenario. `box`: CPU time (ms) in the round of the load generator (wrk, once it ended), of
 * this process (the upstream, and the built-in generator when wrk is missing) and of the proxy, against what the
 * machine's cores could give in that time.
 */
export type Round = LoadResult & { rss?: number; cpuMs?: number; /** Of `cpuMs`, user time. */ userMs?: number; box?: { generatorMs: number; upstreamMs: number; proxyMs?: number; capacityMs: number } }

export interface Section { title: string; scenarios: Scenario[]; results: Map<string, Round[]> }

/**
 * The order the scenarios run in within a round: each row of the code at BENCH_COMPARE_DIR (`<id>-base`) right
 * after the same row here, so the two meet the machine in the same state; every other round runs the order
 * backwards (A B, B A, …), so neither always runs first.
 */
export function roundOrder<S extends Pick<Scenario, 'id'>>(scenarios: readonly S[]): S[] {
  const byId = new Map(scenarios.map((s) => [s.id, s]))
  const order: S[] = []
  for (const s of scenarios) {
    if (s.id.endsWith('-base') && byId.has(s.id.slice(0, -'-base'.length))) continue
    order.push(s)
    const base = byId.get(`${s.id}-base`)
    if (base) order.push(base)
  }
  return order
}

/** The median round of a scenario by req/s (undefined when it did not run). */
export function median(results: Map<string, Round[]>, id: string): Round | undefined {
  const list = [...(results.get(id) ?? [])].sort((a, b) => a.rps - b.rps)
  return list[Math.floor((list.length - 1) / 2)]
}

const cpuPerRequest = (r?: Round) => (r?.cpuMs === undefined || !r.requests ? undefined : (r.cpuMs * 1000) / r.requests)
const userPerRequest = (r?: Round) => (r?.userMs === undefined || !r.requests ? undefined : (r.userMs * 1000) / r.requests)
const percent = (ms: number | undefined, capacity: number) => (ms === undefined ? '–' : ((ms / capacity) * 100).toFixed(0))
const boxOf = (r: Round) => (r.box ? `${percent(r.box.generatorMs, r.box.capacityMs)} / ${percent(r.box.upstreamMs, r.box.capacityMs)} / ${percent(r.box.proxyMs, r.box.capacityMs)}` : '–')

/** @param nginx the nginx row of this run (the Node 24 section has none of its own: the same nginx serves both) */
export function sectionTable(section: Section, nginx: Round | undefined): string {
  const { scenarios, results } = section
  const bare = median(results, 'bare')
  const ratio = (x: LoadResult, base?: LoadResult) => (base ? (x.rps / base.rps).toFixed(2) : '–')
  return [
    '| path | req/s | rounds (req/s) | p50 ms | p99 ms | max ms | errors | × bare | × nginx | proxy CPU µs/req | box % wrk / upstream / proxy | RSS MiB |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...scenarios.filter((s) => results.has(s.id)).map((s) => {
      const all = results.get(s.id)!
      const m = median(results, s.id)!
      const errors = all.reduce((n, x) => n + x.errors, 0)
      const rss = all.map((x) => x.rss ?? 0).reduce((a, b) => Math.max(a, b), 0)
      const cpu = cpuPerRequest(m)
      return `| ${s.name} | ${m.rps.toFixed(0)} | ${all.map((x) => x.rps.toFixed(0)).join(', ')} | ${m.p50.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.max.toFixed(1)} | ${errors} | ${ratio(m, bare)} | ${ratio(m, nginx)} | ${cpu === undefined ? '–' : cpu.toFixed(0)} | ${boxOf(m)} | ${rss ? (rss / 2 ** 20).toFixed(0) : '–'} |`
    }),
  ].join('\n')
}

/** The targets of issue 16 (and the lines of issues 17 and 18 that still stand), checked on one section. */
export function sectionTargets(section: Section, nginx: Round | undefined, cores: number): string[] {
  const m = (id: string) => median(section.results, id)
  const mark = (ok: boolean) => (ok ? 'met' : '**not met**')
  const us = (x: number) => `${x.toFixed(0)} µs`
  const lines: string[] = []
  const bare = m('bare')
  const apikey = m('apikey')
  const jwt = m('jwt')
  const cpuBare = cpuPerRequest(bare)
  const cpuKey = cpuPerRequest(apikey)
  const cpuJwt = cpuPerRequest(jwt)
  if (cpuKey !== undefined && cpuBare !== undefined) lines.push(`- warm API key CPU per request ≤ 1.25× the bare Node proxy's: ${us(cpuKey)} against ${us(cpuBare)}, ${(cpuKey / cpuBare).toFixed(2)}× — ${mark(cpuKey <= 1.25 * cpuBare)}`)
  if (apikey && bare) lines.push(`- warm API key req/s ≥ 0.80× the bare Node proxy's: ${apikey.rps.toFixed(0)} against ${bare.rps.toFixed(0)}, ${(apikey.rps / bare.rps).toFixed(2)}× — ${mark(apikey.rps >= 0.8 * bare.rps)}`)
  if (cpuKey !== undefined && cpuJwt !== undefined && apikey && jwt) {
    const d = (cpuJwt - cpuKey) / cpuKey
    lines.push(`- JWT within 10 % of the API key path (CPU per request): ${us(cpuJwt)} against ${us(cpuKey)}, ${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)} % (req/s ${(((jwt.rps - apikey.rps) / apikey.rps) * 100).toFixed(1)} %) — ${mark(Math.abs(d) <= 0.1)}`)
  }
  const cold = m('cold')
  if (cold && apikey) lines.push(`- cold key p99 ≤ 2× the warm key's: ${cold.p99.toFixed(2)} ms against ${apikey.p99.toFixed(2)} ms, ${(cold.p99 / apikey.p99).toFixed(2)}× — ${mark(cold.p99 <= 2 * apikey.p99)}`)
  const workers2 = m('workers2')
  const cpuW2 = cpuPerRequest(workers2)
  if (workers2 && cpuW2 !== undefined && cpuKey !== undefined) {
    const share = (r: Round | undefined) => (r?.box ? `wrk ${percent(r.box.generatorMs, r.box.capacityMs)} %, upstream ${percent(r.box.upstreamMs, r.box.capacityMs)} %, proxy ${percent(r.box.proxyMs, r.box.capacityMs)} %` : 'not measured')
    const left = workers2.box ? 100 - ((workers2.box.generatorMs + workers2.box.upstreamMs) / workers2.box.capacityMs) * 100 : undefined
    lines.push(
      `- KEYGATE_WORKERS=2 CPU per request not above one process's: ${us(cpuW2)} against ${us(cpuKey)} (the bound: the one-process API key row of this run), ${(cpuW2 / cpuKey).toFixed(2)}× — ${mark(cpuW2 <= cpuKey)}. ` +
        `Of the box's ${cores} cores in the two-worker round: ${share(workers2)}${left === undefined ? '' : ` (so at most ${left.toFixed(0)} % was left for the proxy)`}; in the one-process round: ${share(apikey)}`,
    )
  }
  for (const stack of ['express', 'fastify']) {
    const pairs = ([['apikey', apikey], ['jwt', jwt]] as const).map(([kind, kg]) => ({ kind, kg, other: m(`${stack}-${kind}`) })).filter((p) => p.kg && p.other)
    if (!pairs.length) continue
    const text = pairs.map((p) => `${p.kind === 'apikey' ? 'API key' : 'JWT'} ${(p.kg!.rps / p.other!.rps).toFixed(2)}× (${p.kg!.rps.toFixed(0)} against ${p.other!.rps.toFixed(0)})`).join(', ')
    lines.push(`- Keygate ≥ 1.5× the ${stack === 'express' ? 'Express' : 'Fastify'} stack's req/s: ${text} — ${mark(pairs.every((p) => p.kg!.rps >= 1.5 * p.other!.rps))}`)
  }
  const decideCached = m('decide-cached')
  if (decideCached && nginx) lines.push(`- nginx + auth_request → Keygate, decision cached ≥ 0.80× nginx req/s (issue 17): ${(decideCached.rps / nginx.rps).toFixed(2)}× — ${mark(decideCached.rps >= 0.8 * nginx.rps)}`)
  const limited = m('apikey-limited')
  const cpuLimited = cpuPerRequest(limited)
  if (cpuKey !== undefined && cpuLimited !== undefined) lines.push(`- rate limit ≤ 10 µs more gateway CPU per request (issue 18): ${(cpuLimited - cpuKey).toFixed(1)} µs${roundByRound(section, 'apikey', 'apikey-limited')} — ${mark(cpuLimited - cpuKey <= 10)}`)
  const cpuKeyBase = cpuPerRequest(m('apikey-base'))
  const cpuLimitedBase = cpuPerRequest(m('apikey-limited-base'))
  if (cpuKeyBase !== undefined && cpuLimitedBase !== undefined) lines.push(`- the same at BENCH_COMPARE_DIR (the code before, same run): ${(cpuLimitedBase - cpuKeyBase).toFixed(1)} µs${roundByRound(section, 'apikey-base', 'apikey-limited-base')}`)
  const errors = [...section.results.values()].flat().reduce((n, x) => n + x.errors, 0)
  lines.push(`- zero errors in every scenario: ${errors} — ${mark(errors === 0)}`)
  return lines
}

/** `b`'s figure less `a`'s, round by round (the two run one after the other in each round, so drift hits both alike). */
function roundDifferences(section: Section, a: string, b: string, perRequest: (r?: Round) => number | undefined): number[] {
  const ra = section.results.get(a) ?? []
  const rb = section.results.get(b) ?? []
  const d: number[] = []
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = perRequest(ra[i])
    const y = perRequest(rb[i])
    if (x !== undefined && y !== undefined) d.push(y - x)
  }
  return d
}

/** The value at fraction `q` (0 to 1) of the sorted list, between its two nearest when it falls between them. */
function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  return sorted[lo]! + (sorted[Math.ceil(at)]! - sorted[lo]!) * (at - lo)
}

/**
 * The CPU per request of `b` less `a`'s, round by round, and their median: steadier than the difference of the
 * two median rounds, which may come from different rounds.
 */
function roundByRound(section: Section, a: string, b: string): string {
  const d = roundDifferences(section, a, b, cpuPerRequest)
  if (d.length < 2) return ''
  return ` (round by round: ${d.map((x) => x.toFixed(1)).join(', ')}; median ${quantile([...d].sort((x, y) => x - y), 0.5).toFixed(1)} µs)`
}

/**
 * With `BENCH_COMPARE_DIR`: each Keygate row against the same row of the code there, round by round, in CPU time
 * and in user time alone. Where a system call is expensive (a VM that traps them costs ~2 µs per write), the
 * kernel's share moves with the machine's load round to round more than user time does: the user time's
 * differences then tell a change of a few per cent that the total's cannot.
 */
export function comparisonLines(section: Section): string[] {
  const lines: string[] = []
  for (const s of section.scenarios) {
    const base = `${s.id}-base`
    if (!section.results.has(base) || !section.results.has(s.id)) continue
    const total = roundDifferences(section, base, s.id, cpuPerRequest).sort((x, y) => x - y)
    const user = roundDifferences(section, base, s.id, userPerRequest).sort((x, y) => x - y)
    if (!total.length) continue
    const spread = (d: number[]) => `median ${quantile(d, 0.5).toFixed(1)} µs (quartiles ${quantile(d, 0.25).toFixed(1)} to ${quantile(d, 0.75).toFixed(1)})`
    lines.push(`- ${s.name}, here less there, over ${total.length} rounds: CPU per request ${spread(total)}${user.length ? `; user time alone ${spread(user)}` : ''}`)
  }
  return lines
}
