import { randomBytes } from 'node:crypto'
import t from 'tap'
import { BOOTSTRAP, call, refusedWithin } from '../helpers/keygate.ts'
import { loadClient, loadLoop } from '../helpers/load.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate, type KeygateProcess } from '../helpers/process.ts'
import { privateRedis } from '../helpers/redis-server.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'

/**
 * Redis is killed (SIGKILL: no shutdown, every connection reset, everything in it lost) and started again on
 * the same port while two gateway processes serve steady load. The README's design: Redis is a cache and a
 * transport, never on the request path's critical line; lookups skip it while it is away, each gateway's
 * subscriber reconnects by itself and flushes its in-process cache, and invalidation works again.
 */

const FLUSH = /"msg":"flushing the credential caches: invalidation messages may have been missed".*?"reason":"([^"]+)"/g

/** The flush reasons a gateway logged after output line `from`. */
function flushesSince(kg: KeygateProcess, from: number): string[] {
  return [...kg.output.slice(from).join('').matchAll(FLUSH)].map((m) => m[1]!)
}

async function until(ok: () => boolean, ms: number): Promise<number> {
  const started = performance.now()
  while (!ok()) {
    if (performance.now() - started > ms) break
    await new Promise((r) => setTimeout(r, 20))
  }
  return performance.now() - started
}

t.test('Redis killed and restarted under load, between two gateway processes', async (t) => {
  const redis = await privateRedis()
  t.teardown(() => redis.stop())
  const schema = await testSchema('redis_restart')
  t.teardown(() => schema.drop())
  const env = {
    DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema,
    REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: `kgtest:restart:${randomBytes(4).toString('hex')}:`,
    KEYGATE_MAX_KEYS_PER_USER: '50',
  }
  const [a, b] = await Promise.all([spawnKeygate(env), spawnKeygate(env)])
  t.teardown(async () => { await Promise.all([a.stop(), b.stop()]) })
  const client = loadClient()
  t.teardown(() => client.close())

  const admin = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const newKey = async () => (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: admin, body: { name: 'k' } })).json as { id: string; api_key: string }
  const keys = await Promise.all(Array.from({ length: 6 }, newKey))
  const jwts = await Promise.all(Array.from({ length: 2 }, async () => (await call(b.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string))
  const credentials = [...keys.map((k) => k.api_key), ...jwts]
  const gateways = [a, b]
  const warm: number[] = []
  for (const g of gateways) for (const c of credentials) warm.push((await client.get(`${g.url}/api/v1/conversations`, c)).status)
  t.same(warm, Array(warm.length).fill(200), 'warm: each credential used once on each gateway, so each holds it in memory')

  await t.test('not one request fails while Redis is killed and restarted', async (t) => {
    // Four closed loops, each going round both gateways and every credential (API keys and JWTs).
    const load = loadLoop({
      concurrency: 4,
      pauseMs: 2,
      send: async (loop, i) => {
        const g = gateways[(loop + i) % 2]!
        const credential = credentials[(loop * 3 + i) % credentials.length]!
        return { ...(await client.get(`${g.url}/api/v1/conversations`, credential)), label: `${g === a ? 'A' : 'B'} ${credential.startsWith('sk_') ? 'key' : 'jwt'}` }
      },
    })
    await new Promise((r) => setTimeout(r, 500))
    const sentBefore = load.report.sent
    const outputAt = [a.output.length, b.output.length]
    const killedAt = performance.now()
    await redis.kill()
    await new Promise((r) => setTimeout(r, 1500))
    const sentWhileDown = load.report.sent
    await redis.restart()
    const restartedAt = performance.now()
    // Each subscriber reconnects by itself, and each gateway drops its in-process cache (messages published
    // meanwhile are lost, and this Redis starts empty).
    const resubscribed = await until(() => gateways.every((g, i) => flushesSince(g, outputAt[i]!).includes('subscriber reconnected')), 10_000)
    await new Promise((r) => setTimeout(r, 1000))
    const report = await load.stop()
    t.same(report.failures, [], `${report.sent} requests (${sentWhileDown - sentBefore} while Redis was down for ${(restartedAt - killedAt).toFixed(0)} ms), none failed`)
    t.ok(sentWhileDown - sentBefore > 50, 'requests kept flowing while Redis was down')
    t.ok(report.maxMs < 3000, `the slowest answer took ${report.maxMs.toFixed(0)} ms`)
    for (const [i, g] of gateways.entries()) t.ok(flushesSince(g, outputAt[i]!).includes('subscriber reconnected'), `gateway ${'AB'[i]} resubscribed and flushed its cache, ${resubscribed.toFixed(0)} ms after the restart`)
    t.comment(`requests: ${report.sent}, by status ${JSON.stringify(report.statuses)}, while down: ${sentWhileDown - sentBefore}, slowest ${report.maxMs.toFixed(0)} ms`)
  })

  await t.test('once Redis is back, a key revoked through A is refused by B, and the other way round', async (t) => {
    for (const [from, to, name] of [[a, b, 'A → B'], [b, a, 'B → A']] as const) {
      const key = await newKey()
      t.equal((await call(to.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, `${name}: cached on the receiving gateway`)
      const token = (await call(from.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
      const revoked = await call(from.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token })
      t.equal(revoked.status, 200, `${name}: the revocation was published`)
      const seen = await refusedWithin(to.url, key.api_key, 2000)
      t.equal(seen.code, 'KEY_REVOKED', `${name}: refused after ${seen.afterMs.toFixed(0)} ms`)
    }
  })

  await t.test('a logout through B ends the session on A', async (t) => {
    const session = (await call(b.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
    t.equal((await call(a.url, 'GET', '/api/v1/conversations', { token: session })).status, 200)
    t.equal((await call(b.url, 'POST', '/api/v1/auth/logout', { token: session })).status, 200)
    const seen = await refusedWithin(a.url, session, 2000)
    t.equal(seen.code, 'TOKEN_REVOKED', `refused by A after ${seen.afterMs.toFixed(0)} ms`)
  })

  await t.test('a revocation made while Redis is down is refused everywhere once it is back', async (t) => {
    const key = await newKey()
    for (const g of gateways) t.equal((await call(g.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200)
    await redis.kill()
    const res = await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: admin })
    t.equal(res.status, 503, 'the admin call says the others were not told')
    t.equal(res.json.code, 'INVALIDATION_FAILED')
    t.equal((await call(a.url, 'GET', '/api/v1/conversations', { token: key.api_key })).json?.code, 'KEY_REVOKED', 'A itself refuses it at once')
    await redis.restart()
    const seen = await refusedWithin(b.url, key.api_key, 5000)
    t.equal(seen.code, 'KEY_REVOKED', `B refuses it ${seen.afterMs.toFixed(0)} ms after Redis came back`)
  })

  await t.test('after a second restart, invalidation still reaches both gateways', async (t) => {
    // Redis starts empty each time, so the deployment's generation counter starts again from zero.
    await redis.kill()
    await new Promise((r) => setTimeout(r, 300))
    const outputAt = [a.output.length, b.output.length]
    await redis.restart()
    await until(() => gateways.every((g, i) => flushesSince(g, outputAt[i]!).includes('subscriber reconnected')), 10_000)
    for (const [from, to, name] of [[a, b, 'A → B'], [b, a, 'B → A']] as const) {
      const key = await newKey()
      t.equal((await call(to.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200)
      const token = (await call(from.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
      t.equal((await call(from.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token })).status, 200)
      const seen = await refusedWithin(to.url, key.api_key, 2000)
      t.equal(seen.code, 'KEY_REVOKED', `${name}: refused after ${seen.afterMs.toFixed(0)} ms`)
    }
  })

  await t.test('no credential appears in either gateway\'s output', async (t) => {
    t.same(leakedSecrets([...a.output, ...b.output], [...credentials, admin, BOOTSTRAP.password]), [])
  })
})
