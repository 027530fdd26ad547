import { Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { seriesCounter, seriesHistogram } from '../../../core/metric-series.ts'

const BUCKETS = [0.001, 0.01, 0.1, 1]
// Sums of binary fractions: exact in any order, so the two paths must print the same digits.
const VALUES = [0.00048828125, 0.0078125, 0.0078125, 0.25, 0.5, 2, 0.03125, 0.0009765625]

/** The exposition of one registry after `fill`, once with prom-client's own updates and once through series. */
async function bothWays(fill: (plain: { counter: Counter<string>; histogram: Histogram<string> }, series: { counter: ReturnType<typeof seriesCounter<string>>; histogram: ReturnType<typeof seriesHistogram<string>> }) => void) {
  const a = new Registry()
  const b = new Registry()
  const config = (registers: Registry[]) => ({
    counter: { name: 'x_requests_total', help: 'Requests', labelNames: ['route', 'code'], registers },
    histogram: { name: 'x_duration_seconds', help: 'Duration', labelNames: ['route'], buckets: BUCKETS, registers },
  })
  const plain = { counter: new Counter(config([a]).counter), histogram: new Histogram(config([a]).histogram) }
  const series = { counter: seriesCounter(config([b]).counter), histogram: seriesHistogram(config([b]).histogram) }
  fill(plain, series)
  return { plain: await a.metrics(), series: await b.metrics(), seriesJson: await b.getMetricsAsJSON(), plainJson: await a.getMetricsAsJSON() }
}

t.test('series print exactly what prom-client prints for the same updates: names, labels, buckets, sums, HELP', async (t) => {
  const out = await bothWays((plain, series) => {
    const fast = series.histogram.series({ route: 'r1' })
    const other = series.histogram.series({ route: 'r2' })
    const ok = series.counter.series({ route: 'r1', code: 'ok' })
    for (const v of VALUES) {
      plain.histogram.observe({ route: 'r1' }, v)
      fast.observe(v)
      plain.counter.inc({ route: 'r1', code: 'ok' })
      ok.inc()
    }
    plain.histogram.observe({ route: 'r2' }, 0.01)
    other.observe(0.01)
  })
  t.equal(out.series, out.plain)
  t.same(out.seriesJson, out.plainJson, 'a cluster worker answers the primary with the same values')
  t.match(out.series, /x_duration_seconds_bucket\{le="\+Inf",route="r1"\} 8/)
  t.match(out.series, /x_duration_seconds_bucket\{le="0.01",route="r1"\} 4/)
})

t.test('updates through the metric itself and through a series add up on one entry', async (t) => {
  const out = await bothWays((plain, series) => {
    for (const v of VALUES) plain.histogram.observe({ route: 'r1' }, v)
    for (let i = 0; i < 3; i++) plain.counter.inc({ route: 'r1', code: 'ok' })
    const h = series.histogram.series({ route: 'r1' })
    const c = series.counter.series({ route: 'r1', code: 'ok' })
    VALUES.forEach((v, i) => (i % 2 ? h.observe(v) : series.histogram.observe({ route: 'r1' }, v)))
    c.inc()
    series.counter.inc({ route: 'r1', code: 'ok' })
    c.inc()
  })
  t.equal(out.series, out.plain)
})

t.test('a series is folded once: reading twice does not count twice, and later updates still show', async (t) => {
  const registry = new Registry()
  const counter = seriesCounter({ name: 'y_total', help: 'Y', labelNames: ['route'], registers: [registry] })
  const histogram = seriesHistogram({ name: 'y_seconds', help: 'Y', labelNames: ['route'], buckets: BUCKETS, registers: [registry] })
  const c = counter.series({ route: 'a' })
  const h = histogram.series({ route: 'a' })
  t.equal(counter.series({ route: 'a' }), c, 'the same labels give the same series')
  c.inc()
  h.observe(0.5)
  await registry.metrics()
  const twice = await registry.metrics()
  t.match(twice, /y_total\{route="a"\} 1\n/)
  t.match(twice, /y_seconds_count\{route="a"\} 1\n/)
  c.inc()
  h.observe(5)
  const later = await registry.metrics()
  t.match(later, /y_total\{route="a"\} 2\n/)
  t.match(later, /y_seconds_bucket\{le="1",route="a"\} 1\n/)
  t.match(later, /y_seconds_bucket\{le="\+Inf",route="a"\} 2\n/)
  t.match(later, /y_seconds_sum\{route="a"\} 5.5\n/)
})

t.test('a series that was never updated is not printed (as prom-client prints no entry it never saw)', async (t) => {
  const registry = new Registry()
  const histogram = seriesHistogram({ name: 'z_seconds', help: 'Z', labelNames: ['route'], buckets: BUCKETS, registers: [registry] })
  histogram.series({ route: 'idle' })
  t.notMatch(await registry.metrics(), /idle/)
})
