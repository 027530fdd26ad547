import t from 'tap'
import { allThreads, allThreadsMean, emptyMeasured, irReport, type IrMeasured } from '../../bench/instructions-report.ts'

const settings = { machine: '2 × test CPU', node: 'v0', rounds: 3, requests: 1000, connections: 8, warmup: 100, rewarm: 10, generator: 'wrk', seconds: 5 }
const rows = [{ id: 'bare', name: 'bare' }, { id: 'apikey', name: 'key' }, { id: 'jwt', name: 'jwt' }, { id: 'apikey-limited', name: 'limited' }]
const kernel = { 'raw_syscalls:sys_enter': 4.2, 'context-switches': 0.5, 'page-faults': 0.1 }
const m = (main: number[], other: number[], cpuUs: number[] = [], errors = 0): IrMeasured => ({ ...emptyMeasured(), main, other, cpuUs, rps: cpuUs.map(() => 5000), kernel: cpuUs.map(() => kernel), errors })
const line = (lines: string[], start: string) => lines.find((l) => l.startsWith(start)) ?? ''

t.test('a path costs its median round over every thread; a collection that fell in one round shows in the mean beside it', async (t) => {
  const withSpike = m([100_000, 100_000, 100_000], [0, 0, 60_000])
  t.equal(allThreads(withSpike), 100_000)
  t.equal(allThreadsMean(withSpike), 120_000)
  const limited = m([110_000, 110_000, 110_000], [1000, 0, 60_000])
  const lines = irReport(rows.slice(1, 2).concat(rows.slice(3)), new Map([['apikey', withSpike], ['apikey-limited', limited]]), settings)
  t.equal(line(lines, '- Issue 18'), '', 'without native figures there is no scale to say it in µs: no line')
  const timed = irReport(rows.slice(1, 2).concat(rows.slice(3)), new Map([['apikey', { ...withSpike, cpuUs: [50, 50, 50] }], ['apikey-limited', limited]]), settings)
  // 50 µs per 100,000 instructions natively: 11,000 more instructions are 5.5 µs.
  t.match(line(timed, '- Issue 18'), /: 5\.5 µs \(\+11,000 instructions, all threads, median rounds; of the means: \+10,333, 5\.2 µs\) — met\./)
  t.match(line(timed, '| limited'), /\| 111,000 \| 130,333 \| 110,000 \(110,000, 110,000, 110,000\) \| 1,000 \(1,000, 0, 60,000\) \| \+11,000 \(11\.0 %\) \| \+5\.5 \|/)
})

t.test('the rate limit\'s line says not met past 10 µs, and the JWT line past 10 % either way', async (t) => {
  const lines = irReport(rows, new Map([
    ['bare', m([80_000, 80_000, 80_000], [1000, 1000, 1000], [40, 41, 39])],
    ['apikey', m([100_000, 101_000, 99_000], [2000, 2000, 2000], [60, 70, 50])],
    ['jwt', m([90_000, 90_000, 90_000], [1000, 1000, 1000], [55, 60, 58])],
    ['apikey-limited', m([125_000, 125_000, 125_000], [2000, 2000, 2000], [80, 85, 90])],
  ]), settings)
  t.match(line(lines, '- Issue 18'), /\*\*not met\*\*/, 'a limit 25,000 instructions dearer, at 60 µs per 102,000, is 14.7 µs')
  t.match(line(lines, '- Issue 18'), /14\.7 µs/)
  t.match(line(lines, '- Issue 16, JWT'), /-10\.8 % in instructions — \*\*not met\*\*/, 'cheaper by more than 10 % is outside the band too')
  t.match(line(lines, '| bare'), /\| 4\.20 \| 0\.50 \| 0\.10 \| 0 \|$/, 'the kernel\'s counts are the medians of the native rounds')
  t.match(line(lines, '- Zero errors'), /: 0 — met/)
})

t.test('errors in any path fail the zero-errors line, and a path measured under valgrind only has no native figures', async (t) => {
  const lines = irReport(rows.slice(1, 2), new Map([['apikey', m([100_000], [0], [], 3)]]), settings)
  t.match(line(lines, '- Zero errors'), /: 3 — \*\*not met\*\*/)
  t.match(line(lines, '| key'), /\| – \| – \| – \| – \| – \| 3 \|$/)
  t.equal(line(lines, '- Issue 18'), '', 'no line without the limited path')
})
