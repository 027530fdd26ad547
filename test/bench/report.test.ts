import t from 'tap'
import { nginxConf } from '../../bench/nginx-conf.ts'
import { comparisonLines, roundOrder, sectionTable, sectionTargets, type Round, type Section } from '../../bench/report.ts'

const round = (rps: number, cpuUsPerReq: number, p99 = 5, errors = 0): Round => ({
  requests: rps * 10, errors, rps, p50: 1, p99, max: 20, cpuMs: (rps * 10 * cpuUsPerReq) / 1000, rss: 100 * 2 ** 20,
  box: { generatorMs: 2000, upstreamMs: 4000, proxyMs: 9000, capacityMs: 20_000 },
})
const section = (rows: Record<string, Round>): Section => ({
  title: 'Node test',
  scenarios: Object.keys(rows).map((id) => ({ id, name: id, spec: { origin: 'http://x', path: '/' } })),
  results: new Map(Object.entries(rows).map(([id, r]) => [id, [r]])),
})
const lineOf = (lines: string[], start: string) => lines.find((l) => l.startsWith(start)) ?? ''

t.test('the targets of issue 16 are checked against the bare Node proxy, the one-process row and each stack of the same section', async (t) => {
  const met = sectionTargets(section({
    bare: round(20_000, 40), apikey: round(16_000, 50, 6), jwt: round(15_500, 53), cold: round(9000, 80, 12), workers2: round(17_000, 48),
    'express-apikey': round(5000, 200), 'express-jwt': round(4000, 260), 'fastify-apikey': round(10_000, 90), 'fastify-jwt': round(9000, 100),
  }), undefined, 2)
  t.ok(met.length >= 8, met.join('\n'))
  t.notMatch(met.join('\n'), /not met/, 'every target met')
  t.match(lineOf(met, '- KEYGATE_WORKERS=2'), /the bound: the one-process API key row.*wrk 10 %, upstream 20 %, proxy 45 %.*at most 70 % was left for the proxy/, 'the bound and the box\'s shares are stated')

  const missed = sectionTargets(section({
    bare: round(20_000, 40), apikey: round(10_000, 90, 6), jwt: round(10_000, 120), cold: round(5000, 140, 13), workers2: round(12_000, 95),
    'fastify-apikey': round(9000, 100), 'fastify-jwt': round(5000, 150, 5, 3),
  }), undefined, 2)
  for (const start of ['- warm API key CPU', '- warm API key req/s', '- JWT within', '- cold key p99', '- KEYGATE_WORKERS=2', '- Keygate ≥ 1.5× the Fastify', '- zero errors']) {
    t.match(lineOf(missed, start), /\*\*not met\*\*/, `${start}: not met`)
  }
  t.equal(lineOf(missed, '- Keygate ≥ 1.5× the Express'), '', 'no line for a stack that did not run')
})

t.test('the rate limit\'s cost is checked on the median rounds, and shown round by round beside it, for the code before too', async (t) => {
  const rounds = (rows: Record<string, Round[]>): Section => ({ ...section({}), scenarios: Object.keys(rows).map((id) => ({ id, name: id, spec: { origin: 'http://x', path: '/' } })), results: new Map(Object.entries(rows)) })
  const lines = sectionTargets(rounds({
    apikey: [round(10_000, 100), round(9000, 110), round(11_000, 95)],
    'apikey-limited': [round(9900, 104), round(8800, 113), round(11_000, 97)],
    'apikey-base': [round(10_000, 100), round(9000, 110)],
    'apikey-limited-base': [round(9000, 115), round(8000, 128)],
  }), undefined, 2)
  t.match(lineOf(lines, '- rate limit ≤ 10 µs'), /: 4\.0 µs \(round by round: 4\.0, 3\.0, 2\.0; median 3\.0 µs\) — met$/)
  t.match(lineOf(lines, '- the same at BENCH_COMPARE_DIR'), /: 18\.0 µs \(round by round: 15\.0, 18\.0; median 16\.5 µs\)$/)
})

t.test('each Keygate row is compared with the same row of the code at BENCH_COMPARE_DIR, round by round, in CPU and in user time', async (t) => {
  const withUser = (rps: number, cpuUs: number, userUs: number): Round => ({ ...round(rps, cpuUs), userMs: (rps * 10 * userUs) / 1000 })
  const rows: Record<string, Round[]> = {
    apikey: [withUser(10_000, 100, 70), withUser(9000, 130, 72), withUser(11_000, 90, 66), withUser(10_000, 104, 69)],
    'apikey-base': [withUser(10_000, 104, 74), withUser(9000, 120, 75), withUser(11_000, 99, 70), withUser(10_000, 110, 72)],
    jwt: [round(10_000, 100)],
    bare: [round(20_000, 40)],
  }
  const s: Section = { title: 'Node test', scenarios: Object.keys(rows).map((id) => ({ id, name: id, spec: { origin: 'http://x', path: '/' } })), results: new Map(Object.entries(rows)) }
  const lines = comparisonLines(s)
  t.equal(lines.length, 1, 'one line: only the API key row ran at both')
  // CPU: −4, +10, −9, −6 → sorted −9, −6, −4, +10: median −5, quartiles −6.75 and −0.5 (interpolated); user: −4, −3, −4, −3.
  t.equal(lines[0], '- apikey, here less there, over 4 rounds: CPU per request median -5.0 µs (quartiles -6.8 to -0.5); user time alone median -3.5 µs (quartiles -4.0 to -3.0)')
})

t.test('a row of the code at BENCH_COMPARE_DIR runs right after the same row here; every row runs once a round', async (t) => {
  const ids = (list: Array<{ id: string }>) => list.map((s) => s.id)
  t.same(ids(roundOrder(['nginx', 'bare', 'apikey', 'jwt', 'cold', 'apikey-base', 'jwt-base', 'cold-base'].map((id) => ({ id })))), ['nginx', 'bare', 'apikey', 'apikey-base', 'jwt', 'jwt-base', 'cold', 'cold-base'])
  t.same(ids(roundOrder(['apikey', 'jwt'].map((id) => ({ id })))), ['apikey', 'jwt'], 'without a comparison, the order given')
  t.same(ids(roundOrder(['apikey', 'odd-base'].map((id) => ({ id })))), ['apikey', 'odd-base'], 'a -base row without its counterpart still runs')
})

t.test('the table has a column against the bare proxy and the box\'s shares, and RSS last', async (t) => {
  const table = sectionTable(section({ bare: round(20_000, 40), apikey: round(16_000, 50) }), round(40_000, 12))
  const row = table.split('\n').find((l) => l.startsWith('| apikey '))!.split('|').map((c) => c.trim())
  t.equal(row[8], '0.80', '× bare')
  t.equal(row[9], '0.40', '× nginx')
  t.equal(row[10], '50', 'CPU µs per request')
  t.equal(row[11], '10 / 20 / 45', 'box %')
  t.equal(row.at(-2), '100', 'RSS MiB, the last column')
})

t.test('every bench nginx shares one prologue: its own prefix, one access line per request, the caller\'s http body inside', async (t) => {
  const conf = nginxConf('/tmp/p', 1, 'include /tmp/p/x.conf;')
  t.match(conf, /^daemon off;$/m)
  t.match(conf, /^worker_processes 1;$/m)
  t.match(conf, /access_log \/tmp\/p\/logs\/access\.log;/)
  t.match(conf, /http \{[^]*\n  include \/tmp\/p\/x\.conf;\n\}\n$/, 'the body is the last thing in http { }')
})
