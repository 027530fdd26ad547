import { randomBytes } from 'node:crypto'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPglite, keygateOnPostgres } from '../helpers/keygate.ts'
import { rawRequest, statusAndCode } from '../helpers/raw-http.ts'
import { testRedisPrefix } from '../helpers/redis.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'
import { echoRouteFile, echoServer } from '../helpers/upstreams.ts'

/**
 * Rate limits through the whole gateway: the embedded default counts in-process, answers carry the rate limit
 * headers, a refusal is a 429 RATE_LIMITED problem with Retry-After on HTTP and WebSocket alike, and a Redis cut
 * mid-run lets requests through uncounted (the metric counts them) until it is back.
 */

async function metric(metricsPort: number, name: string): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text())
  const m = new RegExp(`^${name.replace(/[{}]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text)
  return m ? Number(m[1]) : 0
}

async function apiKey(base: string, body: Record<string, unknown> = {}): Promise<{ id: string; api_key: string }> {
  const jwt = (await call(base, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const created = await call(base, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: `k-${randomBytes(3).toString('hex')}`, ...body } })
  if (created.status !== 200) throw new Error(`key not created: ${created.status} ${created.text}`)
  return created.json
}

const get = (base: string, path: string, key: string) => fetch(base + path, { headers: { authorization: `Bearer ${key}` } })

t.test('the embedded default limits in-process: the budget, then 429 RATE_LIMITED with Retry-After, on HTTP and WebSocket', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const file = echoRouteFile(echo.origin, `
- { name: echo, prefix: /echo, upstream: echo, websockets: true, rate_limit: { limit: 5, window_seconds: 60 } }
- { name: plain, prefix: /plain, upstream: echo }`)
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '10' })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const { api_key: key } = await apiKey(kg.url)

  const answers = []
  for (let i = 0; i < 7; i++) {
    const res = await get(kg.url, '/echo/x', key)
    answers.push({ status: res.status, policy: res.headers.get('ratelimit-policy'), state: res.headers.get('ratelimit'), retry: res.headers.get('retry-after'), body: await res.text() })
  }
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200, 429, 429])
  t.same(answers.slice(0, 5).map((a) => a.state?.replace(/reset=\d+/, 'reset=R')), [4, 3, 2, 1, 0].map((n) => `limit=5, remaining=${n}, reset=R`))
  t.ok(answers.every((a) => a.policy === '5;w=60'), 'RateLimit-Policy on every answer of the route')
  const refused = answers[5]!
  t.match(JSON.parse(refused.body), { status: 429, code: 'RATE_LIMITED', type: 'urn:keygate:error:RATE_LIMITED' })
  t.ok(Number(refused.retry) > 0 && Number(refused.retry) <= 66, `Retry-After in seconds (${refused.retry})`)
  t.match(refused.state, /^limit=5, remaining=0, reset=\d+$/)
  t.equal(echo.seen.filter((s) => s.url.startsWith('/echo')).length, 5, 'the refused requests never reached the upstream')

  const upgrade = await rawRequest(kg.port, ['GET /echo/ws HTTP/1.1', 'Host: x', `Authorization: Bearer ${key}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])
  t.same(statusAndCode(upgrade), { status: 429, code: 'RATE_LIMITED' }, 'a WebSocket handshake is limited by the same admission')
  t.match(upgrade, /\r\nretry-after: \d+\r\n/i)

  const fresh = (await apiKey(kg.url)).api_key
  const tooLarge = await rawRequest(kg.port, ['POST /echo/upload HTTP/1.1', 'Host: x', `Authorization: Bearer ${fresh}`, `Content-Length: ${20 * 1024 * 1024}`])
  t.same(statusAndCode(tooLarge), { status: 413, code: 'BODY_TOO_LARGE' })
  t.match(tooLarge, /\r\nratelimit: limit=5, remaining=4, reset=\d+\r\n/i, 'the gateway\'s own answers after admission carry the headers too')

  const plain = await get(kg.url, '/plain/x', key)
  t.equal(plain.status, 200, 'a route without a limit is not limited')
  t.equal(plain.headers.get('ratelimit'), null, 'and has no rate limit headers')

  t.equal(await metric(kg.metricsPort, 'keygate_rate_limited_total{route="echo"}'), 3)
  const lines = kg.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.route === 'echo')
  t.equal(lines.filter((l) => l.code === 'RATE_LIMITED' && l.status === 429).length, 3, 'the access line says code RATE_LIMITED')
  const limited = lines.filter((l) => l.code === 'RATE_LIMITED')
  t.ok(limited.every((l) => l.auth === 'api_key' && typeof l.key_id === 'string' && typeof l.user_id === 'string'), 'and names the key and user that were limited (never the secret)')
})

t.test('a key\'s own limit and quota: set at creation, listed with usage, lowered by PATCH and applied at once', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const file = echoRouteFile(echo.origin, '- { name: echo, prefix: /echo, upstream: echo, rate_limit: { limit: 100, window_seconds: 60 } }')
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '10' })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const created = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'metered', rate_limit: { limit: 3, window_seconds: 60 }, quota: { daily: 1000 } } })
  t.equal(created.status, 200)
  t.same([created.json.rate_limit, created.json.quota], [{ limit: 3, window_seconds: 60 }, { daily: 1000 }])
  const key = created.json.api_key as string
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await get(kg.url, '/echo/a', key)).status)
  t.same(statuses, [200, 200, 200, 429], 'the key\'s 3/min is stricter than the route\'s 100/min')

  const lowered = await call(kg.url, 'PATCH', `/api/v1/auth/api-keys/${created.json.id}`, { token: jwt, body: { quota: { daily: 3 } } })
  t.equal(lowered.status, 200)
  t.same(lowered.json.quota, { daily: 3 })
  const res = await get(kg.url, '/echo/a', key)
  t.equal(res.status, 429)
  t.equal(res.headers.get('ratelimit-policy')?.split(', ')[0], '3;w=86400', 'the new quota applies at once (the cached key was told)')

  await kg.close() // flushes the quota counts it holds
  const again = await keygateOnPglite({ KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false' }, kg.dataDir)
  t.teardown(() => again.close())
  const jwt2 = (await call(again.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const listed = (await call(again.url, 'GET', '/api/v1/auth/api-keys', { token: jwt2 })).json as Array<Record<string, unknown>>
  t.match(listed.find((k) => k.id === created.json.id), { rate_limit: { limit: 3, window_seconds: 60 }, quota: { daily: 3 }, usage: { day: 3, month: 3 } })

  t.equal((await call(again.url, 'PATCH', `/api/v1/auth/api-keys/${created.json.id}`, { token: jwt2, body: { rate_limit: { limit: 0, window_seconds: 60 } } })).json.code, 'VALIDATION_FAILED')
  t.equal((await call(again.url, 'PATCH', `/api/v1/auth/api-keys/${created.json.id}`, { token: jwt2, body: {} })).json.code, 'VALIDATION_FAILED', 'a PATCH that changes nothing')
  t.equal((await call(again.url, 'PATCH', `/api/v1/auth/api-keys/00000000-0000-4000-8000-000000000000`, { token: jwt2, body: { rate_limit: null } })).status, 404)
})

t.test('Redis cut mid-run: requests keep flowing uncounted, the metric counts them, one warning line; counted again once back', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const proxy = await tcpProxy({ host: '127.0.0.1', port: 6379 })
  t.teardown(() => proxy.close())
  const file = echoRouteFile(echo.origin, '- { name: echo, prefix: /echo, upstream: echo, rate_limit: { limit: 1000, window_seconds: 60 } }')
  // Its own key prefix, dropped once the gateway has closed (what it wrote through the proxy included).
  const redis = await testRedisPrefix('rlcut')
  const kg = await keygateOnPostgres('rate_limit_cut', { KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', REDIS_URL: `redis://127.0.0.1:${proxy.port}`, KEYGATE_REDIS_PREFIX: redis.prefix })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await redis.drop() })
  const { api_key: key } = await apiKey(kg.url)

  const before = await Promise.all(Array.from({ length: 10 }, () => get(kg.url, '/echo/a', key)))
  t.same(before.map((r) => r.status), Array(10).fill(200))
  t.ok(before.every((r) => r.headers.get('ratelimit') !== null), 'counted in Redis')

  proxy.cut()
  const during = []
  for (let i = 0; i < 20; i++) during.push(await get(kg.url, '/echo/a', key))
  t.same(during.map((r) => r.status), Array(20).fill(200), 'not one request refused or failed')
  t.equal(await metric(kg.metricsPort, 'keygate_rate_limit_fail_open_total'), 20, 'each one counted as failed open')
  const warnings = kg.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'rate limiter unavailable: requests pass uncounted')
  t.equal(warnings.length, 1, 'one warning line, not one per request')
  t.equal(warnings[0].level, 'warn')

  proxy.restore()
  let counted = false
  for (let i = 0; i < 200 && !counted; i++) {
    counted = (await get(kg.url, '/echo/a', key)).headers.get('ratelimit') !== null
    if (!counted) await new Promise((r) => setTimeout(r, 50))
  }
  t.ok(counted, 'counted in Redis again once it is back')
  t.match(await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text()), /keygate_rate_limit_redis_duration_seconds_count [1-9]/, 'the limiter\'s Redis latency is measured')
})
