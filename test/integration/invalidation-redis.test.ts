import t from 'tap'
import { BOOTSTRAP, call, refusedWithin } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'
import { testRedisPrefix } from '../helpers/redis.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'


t.test('two gateway processes on one PostgreSQL and one Redis', async (t) => {
  const schema = await testSchema('inval_redis')
  const redis = await testRedisPrefix('inval')
  const redisPort = Number(new URL(redis.url).port || 6379)
  const relay = await tcpProxy({ host: '127.0.0.1', port: redisPort })
  const env = {
    DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema,
    REDIS_URL: `redis://127.0.0.1:${relay.port}`, KEYGATE_REDIS_PREFIX: redis.prefix,
    KEYGATE_MAX_KEYS_PER_USER: '50',
  }
  const [a, b] = await Promise.all([spawnKeygate(env), spawnKeygate(env)])
  t.teardown(async () => { await Promise.all([a.stop(), b.stop()]); await relay.close(); await redis.drop(); await schema.drop() })
  const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const newKey = async () => (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json as { id: string; api_key: string }

  await t.test('a key cached on B, revoked through A, is refused by B', async (t) => {
    const key = await newKey()
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200)
    t.ok((await redis.client.keys(`${redis.prefix}cache:k:*`)).length > 0, 'the key is cached in Redis too')
    t.equal((await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })).status, 200)
    const seen = await refusedWithin(b.url, key.api_key, 1000)
    t.equal(seen.code, 'KEY_REVOKED', `refused by B after ${seen.afterMs.toFixed(1)} ms`)
  })

  await t.test('a logged-out JWT, and a deactivated user\'s key and JWT, are refused by B', async (t) => {
    const session = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: session })).status, 200)
    await call(a.url, 'POST', '/api/v1/auth/logout', { token: session })
    t.equal((await refusedWithin(b.url, session, 1000)).code, 'TOKEN_REVOKED')

    await call(a.url, 'POST', '/api/v1/auth/users', { token: jwt, body: { username: 'kim', email: 'kim@example.com', password: 'kim password' } })
    const kim = (await call(a.url, 'POST', '/api/v1/auth/login', { body: { username: 'kim', password: 'kim password' } })).json
    const kimKey = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: kim.access_token, body: { name: 'kim' } })).json.api_key
    for (const token of [kimKey, kim.access_token]) t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token })).status, 200)
    await call(a.url, 'PATCH', `/api/v1/auth/users/${kim.user.id}`, { token: jwt, body: { is_active: false } })
    for (const token of [kimKey, kim.access_token]) t.equal((await refusedWithin(b.url, token, 1000)).status, 401, 'refused by B')
  })

  await t.test('Redis down mid-load: no request fails; back up, invalidation works again', async (t) => {
    const cached = await newKey()
    const uncached = await Promise.all(Array.from({ length: 20 }, newKey))
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: cached.api_key })).status, 200)
    const failures: number[] = []
    let running = true
    let sent = 0
    const load = (async () => {
      let i = 0
      while (running) {
        const token = i % 2 === 0 ? cached.api_key : uncached[(i >> 1) % uncached.length]!.api_key
        const status = (await call(b.url, 'GET', '/api/v1/conversations', { token })).status
        if (status !== 200) failures.push(status)
        sent++
        i++
      }
    })()
    await new Promise((r) => setTimeout(r, 300))
    relay.cut()
    await new Promise((r) => setTimeout(r, 1500))
    const fresh = uncached.at(-1)!
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: fresh.api_key })).status, 200, 'a key B has not seen is read from PostgreSQL')
    relay.restore()
    await new Promise((r) => setTimeout(r, 1500))
    running = false
    await load
    t.same(failures, [], `none of ${sent} requests failed while Redis was away`)

    const later = await newKey()
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: later.api_key })).status, 200)
    t.equal((await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${later.id}`, { token: jwt })).status, 200, 'revocation works once Redis is back')
    t.equal((await refusedWithin(b.url, later.api_key, 1000)).code, 'KEY_REVOKED', 'and reaches B')
  })

  await t.test('with Redis away, a revocation is refused by the admin API rather than half-applied silently', async (t) => {
    const key = await newKey()
    relay.cut()
    const res = await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })
    relay.restore()
    t.equal(res.status, 503, 'the caller learns that not every gateway was told')
    t.equal(res.json.code, 'INVALIDATION_FAILED')
  })

  await t.test('a revocation that could not be published is published once Redis is back, well before any cache lifetime', async (t) => {
    const key = await newKey()
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'cached on B and in Redis')
    relay.cut()
    const res = await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })
    t.equal(res.json.code, 'INVALIDATION_FAILED')
    relay.restore()
    const seen = await refusedWithin(b.url, key.api_key, 10_000)
    t.equal(seen.code, 'KEY_REVOKED', `B refuses it ${seen.afterMs.toFixed(0)} ms after Redis came back (cache lifetime 60 s)`)
  })
})

t.test('a gateway whose Redis does not answer at start still starts and serves, from PostgreSQL', async (t) => {
  const { createServer } = await import('node:net')
  const nobody = createServer()
  const port = await new Promise<number>((r) => nobody.listen(0, '127.0.0.1', () => r((nobody.address() as { port: number }).port)))
  await new Promise((r) => nobody.close(r))
  const schema = await testSchema('redis_absent')
  const started = performance.now()
  const kg = await spawnKeygate({ DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, REDIS_URL: `redis://127.0.0.1:${port}` })
  t.teardown(async () => { await kg.stop(); await schema.drop() })
  t.ok(performance.now() - started < 20_000, `started in ${(performance.now() - started).toFixed(0)} ms with Redis refusing connections`)
  t.ok(kg.output.join('').includes('redis unavailable at start'), 'and said why it serves without Redis')
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json.api_key
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200, 'a new key works')
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 200, 'and so does the JWT')
})

t.test('a revocation the revoking gateway could not publish is published by another, even after the first one died', async (t) => {
  const schema = await testSchema('inval_outbox')
  const redis = await testRedisPrefix('outbox')
  const relayA = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(redis.url).port || 6379) })
  // A cache lifetime far longer than the test: only a published invalidation can make B refuse the key.
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, KEYGATE_REDIS_PREFIX: redis.prefix, KEYGATE_CACHE_TTL_MS: '600000' }
  const a = await spawnKeygate({ ...env, REDIS_URL: `redis://127.0.0.1:${relayA.port}` })
  const b = await spawnKeygate({ ...env, REDIS_URL: redis.url })
  t.teardown(async () => { await Promise.all([a.stop('SIGKILL'), b.stop()]); await relayA.close(); await redis.drop(); await schema.drop() })
  const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json as { id: string; api_key: string }
  t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'cached on B and in Redis')

  relayA.cut()
  const res = await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })
  t.equal(res.json.code, 'INVALIDATION_FAILED', 'A could not tell the others')
  const died = await a.stop('SIGKILL')
  t.equal(died, null, 'and A is killed before Redis comes back for it')
  const seen = await refusedWithin(b.url, key.api_key, 10_000)
  t.equal(seen.code, 'KEY_REVOKED', `B refuses it ${seen.afterMs.toFixed(0)} ms later (cache lifetime 600 s)`)
  const db = new (await import('pg')).default.Client({ connectionString: schema.url })
  await db.connect()
  t.teardown(() => db.end())
  t.equal((await db.query(`SELECT count(*)::int AS n FROM ${schema.schema}.invalidation_outbox`)).rows[0].n, 0, 'and nothing is owed any more')
})
