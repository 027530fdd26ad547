import { randomBytes } from 'node:crypto'
import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'
import { testRedisPrefix } from '../helpers/redis.ts'
import { echoRouteFile, echoServer } from '../helpers/upstreams.ts'

/**
 * Two gateway processes sharing PostgreSQL and Redis enforce one budget: 100 requests a minute per key across
 * both, counted by the one Lua script in Redis. The requests go to both in turn, several at once.
 */
t.test('two gateway processes sharing Redis enforce one budget of 100 a minute', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const redis = await testRedisPrefix('rlshared')
  t.teardown(() => redis.drop())
  const schema = await testSchema('rate_limit_shared')
  t.teardown(() => schema.drop())
  const file = echoRouteFile(echo.origin, '- { name: echo, prefix: /echo, upstream: echo, rate_limit: { limit: 100, window_seconds: 60 } }')
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix, KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '10' }
  const a = await spawnKeygate(env)
  t.teardown(() => a.stop())
  const b = await spawnKeygate(env)
  t.teardown(() => b.stop())

  const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: `shared-${randomBytes(3).toString('hex')}` } })).json.api_key as string
  const other = (await call(b.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'other' } })).json.api_key as string

  const statuses: number[] = []
  const perGateway = { a: 0, b: 0 }
  // 250 requests, 10 at a time, each batch spread over both gateways.
  for (let batch = 0; batch < 25; batch++) {
    const answers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const which = (batch + i) % 2 ? 'a' : 'b'
      const res = await fetch(`${which === 'a' ? a.url : b.url}/echo/x`, { headers: { authorization: `Bearer ${key}` } })
      await res.arrayBuffer()
      if (res.status === 200) perGateway[which]++
      return res.status
    }))
    statuses.push(...answers)
  }
  const allowed = statuses.filter((s) => s === 200).length
  t.ok(Math.abs(allowed - 100) <= 1, `100 ± 1 allowed across both gateways (${allowed}: ${perGateway.a} by one, ${perGateway.b} by the other)`)
  t.equal(allowed, 100, 'exactly 100: the script counts atomically')
  t.equal(statuses.filter((s) => s === 429).length, 250 - allowed, 'every other request was 429')
  t.ok(perGateway.a > 20 && perGateway.b > 20, 'both gateways served part of the budget')

  const fresh = await fetch(`${b.url}/echo/x`, { headers: { authorization: `Bearer ${other}` } })
  t.equal(fresh.status, 200, 'another key of the same user has its own budget')
  t.equal(fresh.headers.get('ratelimit')?.replace(/reset=\d+/, 'reset=R'), 'limit=100, remaining=99, reset=R')

  // A key's own limit changed through one gateway holds at once on the other, which had the key cached.
  const metered = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'metered', rate_limit: { limit: 50, window_seconds: 60 } } })).json as { id: string; api_key: string }
  const onB = () => fetch(`${b.url}/echo/x`, { headers: { authorization: `Bearer ${metered.api_key}` } })
  t.equal((await onB()).status, 200, 'cached on the other gateway')
  const lowered = await call(a.url, 'PATCH', `/api/v1/auth/api-keys/${metered.id}`, { token: jwt, body: { rate_limit: { limit: 2, window_seconds: 60 } } })
  t.same([lowered.status, lowered.json.rate_limit], [200, { limit: 2, window_seconds: 60 }])
  let policy: string | null = null
  for (let i = 0; i < 100 && policy?.split(', ')[0] !== '2;w=60'; i++) {
    const res = await onB()
    policy = res.headers.get('ratelimit-policy')
    if (policy?.split(', ')[0] !== '2;w=60') await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(policy?.split(', ')[0], '2;w=60', 'the other gateway counts the new limit (told through Redis, not after its cache TTL)')
  t.equal((await onB()).status, 429)
})
