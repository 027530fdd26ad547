import t from 'tap'
import { createMetrics } from '../../../core/metrics.ts'
import { requestMetrics, statusClassOf } from '../../../gateway/request-metrics.ts'

t.test('each route, method, status class and auth method counts in a series of its own, found again on the next request', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const seriesOf = requestMetrics(metrics)
  const api = seriesOf('api')
  t.equal(seriesOf('api'), api, 'a route\'s series are made once')
  const okKey = api.requests('GET', statusClassOf(200), 'api_key')
  t.equal(api.requests('GET', statusClassOf(204), 'api_key'), okKey, 'the same method, class and auth: the same series')
  for (let i = 0; i < 3; i++) okKey.inc()
  api.requests('GET', statusClassOf(200), 'jwt').inc()
  api.requests('POST', statusClassOf(200), 'api_key').inc()
  api.requests('GET', statusClassOf(404), 'api_key').inc()
  seriesOf('other').requests('GET', statusClassOf(200), 'api_key').inc()
  const text = await metrics.registry.metrics()
  const count = (labels: string) => Number(new RegExp(`keygate_requests_total\\{${labels}\\} (\\d+)`).exec(text)?.[1])
  t.equal(count('route="api",method="GET",status_class="2xx",auth="api_key"'), 3)
  t.equal(count('route="api",method="GET",status_class="2xx",auth="jwt"'), 1)
  t.equal(count('route="api",method="POST",status_class="2xx",auth="api_key"'), 1)
  t.equal(count('route="api",method="GET",status_class="4xx",auth="api_key"'), 1)
  t.equal(count('route="other",method="GET",status_class="2xx",auth="api_key"'), 1)
})
