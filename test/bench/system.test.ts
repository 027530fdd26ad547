import t from 'tap'
import { resultsFile } from '../../bench/system.ts'

t.test('a run of the day gets its own file: the first the plain name, later ones -b, -c, …', async (t) => {
  const existing = new Set<string>()
  const exists = (f: string) => existing.has(f)
  t.equal(resultsFile('bench/results/gateway-2026-12-06', exists), 'bench/results/gateway-2026-12-06.md')
  existing.add('bench/results/gateway-2026-12-06.md')
  t.equal(resultsFile('bench/results/gateway-2026-12-06', exists), 'bench/results/gateway-2026-12-06-b.md', 'an earlier run a README may cite is not overwritten')
  existing.add('bench/results/gateway-2026-12-06-b.md')
  t.equal(resultsFile('bench/results/gateway-2026-12-06', exists), 'bench/results/gateway-2026-12-06-c.md')
  for (let c = 99; c <= 122; c++) existing.add(`bench/results/gateway-2026-12-06-${String.fromCharCode(c)}.md`)
  t.throws(() => resultsFile('bench/results/gateway-2026-12-06', exists), /set BENCH_RESULTS_FILE/, 'past -z it asks for a name')
})
