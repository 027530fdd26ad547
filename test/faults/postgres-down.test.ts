import { connect, createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { QUERY_READ_MARGIN_MS } from '../../core/db-pg.ts'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { loadClient, loadLoop, type LoadReport } from '../helpers/load.ts'
import { TEST_DATABASE_URL, testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'

/**
 * PostgreSQL unavailable while a gateway process serves load. The shared server cannot be stopped, so the
 * gateway reaches it through relays: tcp-proxy.ts refuses connections and cuts the open ones (a server that
 * is down), and `silentRelay` below keeps every connection open but lets no byte through (a network
 * partition, where nothing answers and nothing fails either). Only timeouts can end the second kind.
 * test/integration/database-down.test.ts covers the single-request answers; this file adds load, a separate
 * process and how long each answer takes.
 */

/** A relay that can go silent: connections stay open, bytes in both directions are dropped. */
async function silentRelay(target: { host: string; port: number }) {
  let silent = false
  const pairs = new Set<[Socket, Socket]>()
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.on('data', (d) => { if (!silent) upstream.write(d) })
    upstream.on('data', (d) => { if (!silent) client.write(d) })
    const drop = () => { client.destroy(); upstream.destroy(); pairs.delete(pair) }
    for (const s of pair) s.on('error', drop).on('close', drop)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    silence() { silent = true },
    /** Forwards again; the connections that lived through the silence are reset, as after a long partition. */
    heal() {
      silent = false
      for (const pair of pairs) for (const s of pair) s.destroy()
    },
    close: () => new Promise<void>((r) => { for (const pair of pairs) for (const s of pair) s.destroy(); server.close(() => r()) }),
  }
}

const STATEMENT_TIMEOUT_MS = 1000
/** The pool's connection timeout (core/db-pg.ts). */
const CONNECT_TIMEOUT_MS = 2000
/** Room for a loaded 2-core machine on top of a timeout. */
const MARGIN_MS = 1500

t.test('PostgreSQL unavailable under load, in front of a gateway process', async (t) => {
  const schema = await testSchema('pg_down')
  t.teardown(() => schema.drop())
  const pgUrl = new URL(schema.url)
  // gateway → tcp-proxy (refuse) → silent relay (partition) → PostgreSQL
  const silent = await silentRelay({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) })
  t.teardown(() => silent.close())
  const proxy = await tcpProxy({ host: '127.0.0.1', port: silent.port })
  t.teardown(() => proxy.close())
  const url = new URL(schema.url)
  url.port = String(proxy.port)
  const kg = await spawnKeygate({ DATABASE_URL: url.toString(), DATABASE_SCHEMA: schema.schema, DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS), KEYGATE_MAX_KEYS_PER_USER: '10', KEYGATE_CACHE_TTL_MS: '3600000' })
  t.teardown(async () => { await kg.stop() })
  const client = loadClient()
  t.teardown(() => client.close())

  const admin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const keys = await Promise.all(Array.from({ length: 4 }, async () => (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: admin, body: { name: 'cached' } })).json.api_key as string))
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const cached = [...keys, jwt, admin]
  const warm = await Promise.all(cached.map(async (c) => (await client.get(`${kg.url}/api/v1/conversations`, c)).status))
  t.same(warm, Array(cached.length).fill(200), 'every credential used once, so the gateway holds it in memory')

  const unknownKey = async () => {
    const started = performance.now()
    const res = await client.get(`${kg.url}/api/v1/conversations`, apiKeyFormat().generate().key, 20_000)
    return { ...res, ms: performance.now() - started }
  }
  const readyz = async () => {
    const started = performance.now()
    const res = await client.get(`${kg.url}/readyz`, undefined, 20_000)
    return { ...res, ms: performance.now() - started }
  }
  t.equal((await unknownKey()).code, 'KEY_UNKNOWN', 'with the database up, an unknown key is a plain 401')

  /**
   * Waits until the gateway's invalidation listener has settled after the previous outage, then uses every cached
   * credential once more. A listener that lost its connection reconnects by itself (every 500 ms, each attempt
   * bounded by a 2 s connect timeout) and then flushes the credential caches, as it may have missed a revocation;
   * on a busy machine that flush can come after the database answers again, and would otherwise land in the next
   * outage, sending cached credentials to a database that is away.
   */
  const flushes = () => kg.output.join('').split('flushing the credential caches').length - 1
  async function settled(): Promise<void> {
    let seen = flushes()
    let stableSince = performance.now()
    while (performance.now() - stableSince < 3000) {
      await new Promise((r) => setTimeout(r, 100))
      if (flushes() !== seen) { seen = flushes(); stableSince = performance.now() }
    }
    const again = await Promise.all(cached.map(async (c) => (await client.get(`${kg.url}/api/v1/conversations`, c)).status))
    if (again.some((s) => s !== 200)) throw new Error(`cached credentials could not be used again before the outage: ${again.join(', ')}`)
  }

  /** Four loops over the cached credentials while `outage` runs. */
  async function underLoad(outage: () => Promise<void>): Promise<LoadReport> {
    await settled()
    const load = loadLoop({
      concurrency: 4,
      pauseMs: 2,
      send: async (loop, i) => ({ ...(await client.get(`${kg.url}/api/v1/conversations`, cached[(loop + i) % cached.length]!)), label: 'cached' }),
    })
    try {
      await new Promise((r) => setTimeout(r, 300))
      await outage()
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      await load.stop()
    }
    return load.report
  }

  /** While the database is away: unknown keys (one, then ten at once) and readiness, with their timings. */
  async function whileAway(t: Test, bound: number, label: string) {
    const first = await unknownKey()
    t.equal(first.status, 503, `${label}: the first unknown key is 503`)
    t.equal(first.code, 'DATABASE_UNAVAILABLE', 'never 401')
    t.ok(first.ms < bound, `${label}: answered in ${first.ms.toFixed(0)} ms (bound ${bound} ms)`)
    const burst = await Promise.all(Array.from({ length: 10 }, unknownKey))
    t.same(burst.map((r) => r.code), Array(10).fill('DATABASE_UNAVAILABLE'), `${label}: ten unknown keys at once, each 503 DATABASE_UNAVAILABLE`)
    const slowest = Math.max(...burst.map((r) => r.ms))
    t.ok(slowest < bound, `${label}: the slowest in ${slowest.toFixed(0)} ms`)
    const ready = await readyz()
    t.equal(ready.status, 503, `${label}: /readyz is 503`)
    t.equal(ready.code, 'NOT_READY')
    t.ok(ready.ms < bound, `${label}: /readyz answered in ${ready.ms.toFixed(0)} ms`)
    return { first: first.ms, slowest, readyz: ready.ms }
  }

  /** After the database is back: how long until an unknown key is a 401 again and /readyz is 200. */
  async function recovery(t: Test, label: string) {
    const started = performance.now()
    let last: { status: number; code?: string } = { status: 0 }
    while (performance.now() - started < 10_000) {
      last = await unknownKey()
      if (last.status === 401 && (await readyz()).status === 200) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const ms = performance.now() - started
    t.equal(last.code, 'KEY_UNKNOWN', `${label}: back to 401 KEY_UNKNOWN and ready after ${ms.toFixed(0)} ms`)
    t.equal((await readyz()).status, 200)
    return ms
  }

  await t.test('the server refuses connections: cached credentials keep working, unknown keys get a quick 503', async (t) => {
    let away: Awaited<ReturnType<typeof whileAway>> | undefined
    let back = 0
    const report = await underLoad(async () => {
      proxy.cut()
      try {
        away = await whileAway(t, CONNECT_TIMEOUT_MS + MARGIN_MS, 'refused')
        await new Promise((r) => setTimeout(r, 1000))
      } finally {
        proxy.restore()
      }
      back = await recovery(t, 'refused')
    })
    t.same(report.failures, [], `${report.sent} requests with cached credentials, none failed`)
    t.comment(`refused: ${report.sent} cached requests ${JSON.stringify(report.statuses)}, slowest ${report.maxMs.toFixed(0)} ms; first 503 ${away?.first.toFixed(0)} ms, burst slowest ${away?.slowest.toFixed(0)} ms, readyz ${away?.readyz.toFixed(0)} ms; recovered in ${back.toFixed(0)} ms`)
  })

  await t.test('the network goes silent: cached credentials keep working, unknown keys get 503 within the timeouts, not a hang', async (t) => {
    let away: Awaited<ReturnType<typeof whileAway>> | undefined
    let back = 0
    const report = await underLoad(async () => {
      silent.silence()
      try {
        // A query on a pooled connection is bounded by the statement timeout (plus the client's read margin);
        // a new connection by the connect timeout; a request may meet both.
        away = await whileAway(t, STATEMENT_TIMEOUT_MS + QUERY_READ_MARGIN_MS + CONNECT_TIMEOUT_MS + MARGIN_MS, 'silent')
      } finally {
        silent.heal()
      }
      back = await recovery(t, 'silent')
    })
    t.same(report.failures, [], `${report.sent} requests with cached credentials, none failed`)
    t.ok(report.maxMs < 1000, `the slowest cached request took ${report.maxMs.toFixed(0)} ms: none waited on the database`)
    t.comment(`silent: ${report.sent} cached requests ${JSON.stringify(report.statuses)}, slowest ${report.maxMs.toFixed(0)} ms; first 503 ${away?.first.toFixed(0)} ms, burst slowest ${away?.slowest.toFixed(0)} ms, readyz ${away?.readyz.toFixed(0)} ms; recovered in ${back.toFixed(0)} ms`)
  })

  await t.test('the server answers too slowly (the keys table locked): unknown keys get 503 when the statement timeout ends', async (t) => {
    const locker = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await locker.connect()
    t.teardown(() => locker.end())
    let away: { first: number; slowest: number } | undefined
    const report = await underLoad(async () => {
      await locker.query('BEGIN')
      await locker.query(`LOCK TABLE ${schema.schema}.api_keys IN ACCESS EXCLUSIVE MODE`)
      try {
        const first = await unknownKey()
        t.equal(first.status, 503, 'an unknown key is 503')
        t.equal(first.code, 'DATABASE_UNAVAILABLE', 'never 401, never 500')
        t.ok(first.ms >= STATEMENT_TIMEOUT_MS - 100 && first.ms < STATEMENT_TIMEOUT_MS + MARGIN_MS, `answered in ${first.ms.toFixed(0)} ms (statement timeout ${STATEMENT_TIMEOUT_MS} ms)`)
        const burst = await Promise.all(Array.from({ length: 10 }, unknownKey))
        t.same(burst.map((r) => r.code), Array(10).fill('DATABASE_UNAVAILABLE'), 'ten at once, each 503 DATABASE_UNAVAILABLE')
        away = { first: first.ms, slowest: Math.max(...burst.map((r) => r.ms)) }
        t.ok(away.slowest < STATEMENT_TIMEOUT_MS + MARGIN_MS, `the slowest in ${away.slowest.toFixed(0)} ms`)
      } finally {
        await locker.query('ROLLBACK')
      }
      t.equal((await unknownKey()).code, 'KEY_UNKNOWN', 'with the lock gone, an unknown key is a plain 401 again')
    })
    t.same(report.failures, [], `${report.sent} requests with cached credentials, none failed`)
    t.comment(`slow: ${report.sent} cached requests ${JSON.stringify(report.statuses)}, slowest ${report.maxMs.toFixed(0)} ms; first 503 ${away?.first.toFixed(0)} ms, burst slowest ${away?.slowest.toFixed(0)} ms`)
  })

  await t.test('no credential appears in the gateway\'s output', async (t) => {
    t.same(leakedSecrets(kg.output, [...keys, jwt, admin, BOOTSTRAP.password]), [])
  })
})
