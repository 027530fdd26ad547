import t from 'tap'
import { verifyIdentity } from '@keygate/verify'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'
import { testSchema } from '../helpers/postgres.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'
import { echoRouteFile, echoServer } from '../helpers/upstreams.ts'

/**
 * The decision endpoint on the gateway port, asked the way each ingress asks: what the proxy would answer for
 * the request the headers describe, as a 200 with the signed identity (cacheable for a bounded time) or the
 * proxy's own problem answer (never cacheable). The peer (127.0.0.1) is a trusted proxy here.
 */
const ROUTES = `
- { name: echo, prefix: /echo, upstream: echo }
- { name: everything, prefix: /, methods: [GET], upstream: echo, auth: public }
- { name: public, prefix: /public, upstream: echo, auth: public }
- { name: plain, prefix: /plain, upstream: echo, plain_identity_headers: true }
- { name: scoped, prefix: /scoped, upstream: echo, scopes: [documents:write] }
- { name: read, prefix: /read, methods: [GET, HEAD], upstream: echo }
`

t.test('the decision endpoint', async (t) => {
  const { echo, kg } = await echoGateway(t, 'decide', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1,::1', KEYGATE_MAX_KEYS_PER_USER: '5' } })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'decide' } })).json.api_key
  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  const decide = (headers: Record<string, string>, path = '/_keygate/decide', method = 'GET') => fetch(kg.url + path, { method, headers })
  const nginx = (uri: string, method = 'GET', extra: Record<string, string> = {}) => decide({ 'x-original-uri': uri, 'x-original-method': method, ...extra })
  const bearer = { authorization: `Bearer ${key}` }

  await t.test('nginx style: a good key on a protected route is 200 with a signed identity the upstream verifies, cacheable for 1 s', async (t) => {
    echo.seen.length = 0
    const res = await nginx('/echo/a?x=1', 'POST', bearer)
    t.equal(res.status, 200)
    const identity = res.headers.get('x-keygate-identity')!
    const verdict = await verifyIdentity(identity, { keys: jwks.keys, audience: 'echo' })
    t.ok(verdict.ok, 'the identity verifies for the route\'s audience')
    t.match(res.headers.get('x-accel-expires'), /^@\d+$/, 'an absolute time (whole seconds since the epoch)')
    t.ok(Number(res.headers.get('x-accel-expires')!.slice(1)) < Date.now() / 1000 + 1, 'the entry is gone within 1 s')
    t.equal(res.headers.get('cache-control'), 'private, max-age=1')
    t.ok(res.headers.get('x-request-id'))
    t.equal(await res.text(), '', 'no body')
    t.equal(echo.seen.length, 0, 'nothing went upstream')
  })

  await t.test('Caddy / Traefik style and Envoy style reach the same verdicts', async (t) => {
    const caddy = await decide({ 'x-forwarded-uri': '/echo/a', 'x-forwarded-method': 'GET', ...bearer })
    t.equal(caddy.status, 200)
    t.ok(caddy.headers.get('x-keygate-identity'))
    const envoy = await decide(bearer, '/_keygate/decide/echo/a?q=1', 'DELETE')
    t.equal(envoy.status, 200)
    t.ok(envoy.headers.get('x-keygate-identity'))
    const envoyDenied = await decide({}, '/_keygate/decide/echo/a')
    t.equal(envoyDenied.status, 401)
  })

  await t.test('denials are the proxy\'s own answers, never cacheable', async (t) => {
    const none = await nginx('/echo/a')
    t.equal(none.status, 401)
    t.equal(none.headers.get('www-authenticate'), 'Bearer')
    t.equal((await none.json()).code, 'AUTH_REQUIRED')
    t.equal(none.headers.get('x-accel-expires'), '0')
    t.equal(none.headers.get('cache-control'), 'no-store')
    const bad = await nginx('/echo/a', 'GET', { authorization: 'Bearer sk_live_nope' })
    t.equal(bad.status, 401)
    t.match(bad.headers.get('www-authenticate'), /invalid_token/)
    const scoped = await nginx('/scoped', 'GET', bearer)
    t.equal(scoped.status, 200, 'an unrestricted key has every scope')
    const narrow: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'narrow', scopes: ['documents:read'] } })).json.api_key
    const forbidden = await nginx('/scoped', 'GET', { authorization: `Bearer ${narrow}` })
    t.equal(forbidden.status, 403)
    t.equal((await forbidden.json()).code, 'INSUFFICIENT_SCOPE')
    const method = await nginx('/read/x', 'DELETE', bearer)
    t.equal(method.status, 405)
    t.equal(method.headers.get('allow'), 'GET, HEAD')
  })

  await t.test('a public route is allowed without an identity; plain identity headers come when the route wants them', async (t) => {
    const pub = await nginx('/public/x')
    t.equal(pub.status, 200)
    t.equal(pub.headers.get('x-keygate-identity'), '', 'stated, empty: the ingress clears the client\'s copy')
    const plain = await nginx('/plain/x', 'GET', bearer)
    t.equal(plain.status, 200)
    t.ok(plain.headers.get('x-user-id'))
    t.equal(plain.headers.get('x-username'), 'alice')
    t.equal(plain.headers.get('x-auth-method'), 'api_key')
    t.ok(plain.headers.get('x-api-key-id'))
  })

  await t.test('a request that does not state the original request, or states it twice, is 400 DECISION_REQUEST_INVALID', async (t) => {
    const cases: Record<string, string>[] = [{}, { 'x-original-uri': '/echo' }, { 'x-original-uri': '/echo', 'x-original-method': 'get' }, { 'x-forwarded-method': 'GET' }, { 'x-original-uri': '/echo', 'x-original-method': 'GET', 'x-forwarded-uri': '/public', 'x-forwarded-method': 'GET' }]
    for (const headers of cases) {
      const res = await decide({ ...headers, ...bearer })
      t.equal(res.status, 400, JSON.stringify(headers))
      t.equal((await res.json()).code, 'DECISION_REQUEST_INVALID')
    }
  })

  await t.test('/_keygate/ is reserved: never routed upstream, in any spelling', async (t) => {
    echo.seen.length = 0
    for (const path of ['/_keygate', '/_keygate/', '/_keygate/other', '/_KEYGATE/x', '/%5Fkeygate/decide', '/%5fKeygate/x']) {
      const res = await fetch(kg.url + path, { headers: bearer })
      t.equal(res.status, 404, path)
      t.equal((await res.json()).code, 'ROUTE_NOT_FOUND', path)
    }
    t.equal(echo.seen.length, 0, 'the catch-all route never saw them')
    const res = await nginx('/_keygate/decide', 'GET', bearer)
    t.equal(res.status, 404, 'nor is a decision about one allowed')
  })

  await t.test('decisions are counted by route and code', async (t) => {
    const text = await (await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`)).text()
    t.match(text, /keygate_decisions_total\{route="echo",code="ok"\} [1-9]/)
    t.match(text, /keygate_decisions_total\{route="echo",code="AUTH_REQUIRED"\} [1-9]/)
  })
})

t.test('the decision cache time is bounded by half the identity lifetime, and 0 makes allowing answers uncacheable', async (t) => {
  const long = await echoGateway(t, 'decide_long', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1,::1', KEYGATE_DECISION_CACHE_SEC: '300', KEYGATE_IDENTITY_TTL: '60' } })
  const res = await fetch(`${long.kg.url}/_keygate/decide`, { headers: { 'x-original-uri': '/public', 'x-original-method': 'GET' } })
  t.ok(Number(res.headers.get('x-accel-expires')!.slice(1)) >= Math.floor(Date.now() / 1000) + 28)
  t.equal(res.headers.get('cache-control'), 'private, max-age=30')
  const zero = await echoGateway(t, 'decide_zero', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1,::1', KEYGATE_DECISION_CACHE_SEC: '0' } })
  const none = await fetch(`${zero.kg.url}/_keygate/decide`, { headers: { 'x-original-uri': '/public', 'x-original-method': 'GET' } })
  t.equal(none.status, 200)
  t.equal(none.headers.get('x-accel-expires'), '0')
  t.equal(none.headers.get('cache-control'), 'no-store')
})

t.test('with the database away, an uncached credential gets the proxy\'s 503, a cached one is still allowed', async (t) => {
  const db = await testSchema('decide_db_down')
  const pg = new URL(db.url)
  const proxy = await tcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) })
  t.teardown(() => proxy.close())
  const through = new URL(db.url)
  through.port = String(proxy.port)
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const kg = await keygateOnPostgres('decide_db_down', { DATABASE_URL: through.toString(), KEYGATE_CONFIG: echoRouteFile(echo.origin, ROUTES), KEYGATE_DEMOS: 'false', KEYGATE_TRUSTED_PROXIES: '127.0.0.1,::1', DATABASE_STATEMENT_TIMEOUT_MS: '500' }, db)
  t.teardown(async () => { await kg.close(); await db.drop() })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'cached' } })).json.api_key
  const decide = (credential: string) => fetch(`${kg.url}/_keygate/decide`, { headers: { 'x-original-uri': '/echo/x', 'x-original-method': 'GET', authorization: `Bearer ${credential}` } })
  t.equal((await decide(key)).status, 200, 'the key is now cached')
  proxy.cut()
  const unknown = await decide(apiKeyFormat().generate().key)
  t.equal(unknown.status, 503)
  t.equal((await unknown.json()).code, 'DATABASE_UNAVAILABLE')
  t.equal(unknown.headers.get('x-accel-expires'), '0', 'never cached')
  t.equal((await decide(key)).status, 200, 'a cached credential keeps working')
  proxy.restore()
})

t.test('a rate-limited route counts every decision: its allowing answers are never cacheable, carry the limit, and the request past it is the proxy\'s 429', async (t) => {
  const routes = `
- { name: metered, prefix: /metered, upstream: echo, auth: public, rate_limit: { limit: 2, window_seconds: 60 } }
`
  const { kg } = await echoGateway(t, 'decide_limited', { routes, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1,::1', KEYGATE_DECISION_CACHE_SEC: '30' } })
  const ask = () => fetch(`${kg.url}/_keygate/decide`, { headers: { 'x-original-uri': '/metered/a', 'x-original-method': 'GET' } })
  for (const n of [1, 2]) {
    const res = await ask()
    t.equal(res.status, 200, `decision ${n} is allowed`)
    t.equal(res.headers.get('x-accel-expires'), '0', `decision ${n} is not cacheable by nginx`)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.ok(res.headers.get('ratelimit-policy'), 'the limit is stated')
    t.ok(res.headers.get('ratelimit'), 'what is left is stated')
  }
  const third = await ask()
  t.equal(third.status, 429)
  t.equal((await third.json()).code, 'RATE_LIMITED')
  t.ok(Number(third.headers.get('retry-after')) > 0, 'Retry-After says when to ask again')
  t.equal(third.headers.get('x-accel-expires'), '0')
})
