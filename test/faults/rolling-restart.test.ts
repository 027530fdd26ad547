import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { loadClient, loadLoop } from '../helpers/load.ts'
import { freePort } from '../helpers/ports.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate, type KeygateProcess } from '../helpers/process.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'

/**
 * Two gateway processes behind a load balancer that health-checks `/readyz` (as every balancer does), one
 * restarted after the other while clients keep sending requests with an API key and a JWT: no request fails.
 * The gateway's part: on SIGTERM `/readyz` turns 503 and every answer closes its connection for
 * KEYGATE_DRAIN_DELAY_MS, so the balancer moves away before the listener closes; in-flight requests finish.
 */
const CHECK_INTERVAL_MS = 100
const DRAIN_DELAY_MS = 600

/** The balancer: round robin over the instances whose last health check answered 200. */
function balancer(urls: string[], checkIntervalMs = CHECK_INTERVAL_MS) {
  const ready = urls.map(() => false)
  let next = 0
  let checking = true
  const client = loadClient()
  const checks = urls.map(async (url, i) => {
    while (checking) {
      ready[i] = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
      await new Promise((r) => setTimeout(r, checkIntervalMs))
    }
  })
  return {
    ready,
    pick(): string {
      for (let n = 0; n < urls.length; n++) {
        const i = next++ % urls.length
        if (ready[i]) return urls[i]!
      }
      throw new Error('no instance is ready')
    },
    client,
    async close() {
      checking = false
      await Promise.all(checks)
      await client.close()
    },
  }
}

t.test('a rolling restart of two gateways under load fails no request', async (t) => {
  const schema = await testSchema('rolling')
  const ports = [await freePort(), await freePort()]
  const env = (port: number) => ({ DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, PORT: String(port), KEYGATE_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS), KEYGATE_SHUTDOWN_GRACE_MS: '5000' })
  const gateways: KeygateProcess[] = [await spawnKeygate(env(ports[0]!)), await spawnKeygate(env(ports[1]!))]
  t.teardown(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')))
    await schema.drop()
  })
  const login = await call(gateways[0]!.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const jwt: string = login.json.access_token
  const key: string = (await call(gateways[0]!.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'rolling' } })).json.api_key

  const lb = balancer(gateways.map((g) => g.url))
  t.teardown(() => lb.close())
  while (!lb.ready.every(Boolean)) await new Promise((r) => setTimeout(r, 20))

  const load = loadLoop({
    concurrency: 8,
    send: async (loop) => ({ ...(await lb.client.get(`${lb.pick()}/api/v1/conversations`, loop % 2 ? key : jwt)), label: loop % 2 ? 'api key' : 'jwt' }),
  })
  await new Promise((r) => setTimeout(r, 500))
  const exits: Array<number | null> = []
  const stopped: KeygateProcess[] = []
  for (const i of [0, 1]) {
    stopped.push(gateways[i]!)
    exits.push(await gateways[i]!.stop('SIGTERM'))
    gateways[i] = await spawnKeygate(env(ports[i]!))
    // The balancer finds it ready again before the next one goes.
    while (!lb.ready[i]) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 300))
  }
  const report = await load.stop()
  t.comment(`rolling restart: ${report.sent} requests, statuses ${JSON.stringify(report.statuses)}, slowest ${Math.round(report.maxMs)} ms`)
  t.same(exits, [0, 0], 'each gateway drained and exited cleanly')
  t.same(report.failures.slice(0, 5), [], 'no request failed')
  t.ok(report.sent > 200, `the load kept flowing (${report.sent} requests)`)
  const served = await Promise.all(gateways.map((g) => call(g.url, 'GET', '/api/v1/conversations', { token: key })))
  t.same(served.map((r) => r.status), [200, 200], 'both restarted gateways serve the key')
  t.same(leakedSecrets([...stopped.flatMap((g) => g.output), ...gateways.flatMap((g) => g.output)], [key, jwt, login.json.refresh_token, BOOTSTRAP.password]), [], 'no credential in any gateway\'s output')
})

t.test('without the drain delay the same restart fails requests (the delay is what the balancer needs)', async (t) => {
  const schema = await testSchema('rolling_nodelay')
  const port = await freePort()
  const other = await freePort()
  const env = (p: number) => ({ DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, PORT: String(p), KEYGATE_DRAIN_DELAY_MS: '0', KEYGATE_SHUTDOWN_GRACE_MS: '5000' })
  const gateways = [await spawnKeygate(env(port)), await spawnKeygate(env(other))]
  t.teardown(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')))
    await schema.drop()
  })
  const jwt: string = (await call(gateways[0]!.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  // Health checks a second apart (real balancers check every few seconds): the window between the listener
  // closing and the balancer noticing is long enough to be met even on a machine busy with other work.
  const lb = balancer(gateways.map((g) => g.url), 1000)
  t.teardown(() => lb.close())
  while (!lb.ready.every(Boolean)) await new Promise((r) => setTimeout(r, 20))
  const load = loadLoop({ concurrency: 8, send: async () => lb.client.get(`${lb.pick()}/api/v1/conversations`, jwt) })
  await new Promise((r) => setTimeout(r, 300))
  await gateways[0]!.stop('SIGTERM')
  await new Promise((r) => setTimeout(r, 1200))
  const report = await load.stop()
  t.comment(`without a drain delay: ${report.failures.length} of ${report.sent} requests failed`)
  t.ok(report.failures.length > 0, 'requests sent between the listener closing and the next health check fail')
})
