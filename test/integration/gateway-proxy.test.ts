import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import t from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { verifyIdentity } from '@keygate/verify'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { echoServer, hangingServer, routeFile } from '../helpers/upstreams.ts'

/** Sends bytes exactly as written (header case, underscores, duplicates) and returns the raw response. */
function rawRequest(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(lines.join('\r\n') + '\r\n\r\n'))
    let data = ''
    socket.on('data', (d) => { data += d.toString() })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
}

t.test('the data plane', async (t) => {
  const echo = await echoServer()
  const hanging = await hangingServer()
  t.teardown(() => Promise.all([echo.close(), hanging.close()]))
  const config = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  echo: { url: "${echo.origin}" }
  slow: { url: "${hanging.origin}" }
  down: { url: "http://127.0.0.1:9" }
routes:
  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: echo, prefix: /echo, upstream: echo }
  - { name: echo-public, prefix: /public, upstream: echo, auth: public }
  - { name: echo-read, prefix: /readonly, methods: [HEAD, GET], upstream: echo }
  - { name: echo-upload, prefix: /readonly/upload, methods: [POST], upstream: echo }
  - { name: echo-optional, prefix: /optional, upstream: echo, auth: optional }
  - { name: echo-scoped, prefix: /scoped, upstream: echo, scopes: [documents:write] }
  - { name: slow, prefix: /slow, upstream: slow, timeout_ms: 300 }
  - { name: down, prefix: /down, upstream: down }
`)
  const kg = await keygateOnPostgres('proxy', { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '5' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const jwt: string = login.json.access_token
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'proxy' } })).json.api_key
  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json

  await t.test('a forged identity header never reaches the upstream, in any spelling', async (t) => {
    const forged = ['X-Keygate-Identity: forged', 'x_keygate_identity: forged', 'X_KEYGATE_IDENTITY: forged', 'x-keygate-identity: forged', 'X-User-Id: admin', 'x_user_id: admin', 'X-Username: root', 'X-Forwarded-For: 6.6.6.6']
    echo.seen.length = 0
    const res = await rawRequest(kg.port, ['GET /echo/x HTTP/1.1', 'Host: test', `Authorization: Bearer ${key}`, ...forged, 'Connection: close'])
    t.match(res, /^HTTP\/1.1 200/)
    const got = echo.seen[0]!
    const names = got.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replaceAll('_', '-'))
    t.equal(names.filter((n) => n === 'x-keygate-identity').length, 1, 'exactly one identity header arrives')
    t.notOk(names.includes('x-user-id') || names.includes('x-username'), 'no client identity header arrives')
    t.notOk(got.rawHeaders.includes('forged') || got.rawHeaders.includes('admin') || got.rawHeaders.includes('6.6.6.6'), 'no forged value arrives')
    t.equal(got.headers['x-forwarded-for'], '127.0.0.1', 'x-forwarded-for is the gateway\'s view of the client')
    t.notOk('authorization' in got.headers, 'the credential stops at the gateway')
    const verdict = await verifyIdentity(got.headers['x-keygate-identity'], { keys: jwks.keys, audience: 'echo' })
    t.ok(verdict.ok, 'the injected identity verifies against the published key set')
    if (verdict.ok) t.match(verdict.identity, { username: BOOTSTRAP.username, auth: 'api_key', audience: 'echo' })
    const elsewhere = await verifyIdentity(got.headers['x-keygate-identity'], { keys: jwks.keys, audience: 'documents' })
    t.same(elsewhere, { ok: false, code: 'IDENTITY_AUDIENCE_MISMATCH' }, 'and is refused by any other upstream')
  })

  await t.test('a public route forwards without reading the credential and without an identity', async (t) => {
    echo.seen.length = 0
    const res = await call(kg.url, 'GET', '/public/a', { headers: { 'x-keygate-identity': 'forged' }, token: 'garbage' })
    t.equal(res.status, 200)
    t.notOk('x-keygate-identity' in echo.seen[0]!.headers, 'no identity, forged or real')
  })

  await t.test('an optional route lets anonymous requests through and refuses bad credentials', async (t) => {
    echo.seen.length = 0
    t.equal((await call(kg.url, 'GET', '/optional')).status, 200)
    t.notOk('x-keygate-identity' in echo.seen[0]!.headers)
    const bad = await call(kg.url, 'GET', '/optional', { token: key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A') })
    t.equal(bad.status, 401)
    t.equal(bad.json.code, 'KEY_MALFORMED')
    t.equal((await call(kg.url, 'GET', '/optional', { token: jwt })).status, 200)
    t.ok('x-keygate-identity' in echo.seen.at(-1)!.headers)
  })

  await t.test('a route that needs a scope refuses a key without it and accepts one with it', async (t) => {
    const denied = await call(kg.url, 'GET', '/scoped', { token: (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'narrow', scopes: ['conversations:read'] } })).json.api_key })
    t.equal(denied.status, 403)
    t.equal(denied.json.code, 'INSUFFICIENT_SCOPE')
    t.equal(denied.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"')
    const wide = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'wide', scopes: ['documents:write'] } })).json.api_key
    t.equal((await call(kg.url, 'GET', '/scoped', { token: wide })).status, 200)
    t.equal((await call(kg.url, 'GET', '/scoped', { token: key })).status, 200, 'a key without scopes is unrestricted')
  })

  await t.test('each failure has its status and code', async (t) => {
    const cases: Array<[string, string, Record<string, string>, number, string]> = [
      ['no credential', '/echo', {}, 401, 'AUTH_REQUIRED'],
      ['Basic scheme', '/echo', { authorization: 'Basic YWxpY2U6cHc=' }, 400, 'AUTH_HEADER_INVALID'],
      ['empty bearer', '/echo', { authorization: 'Bearer ' }, 400, 'AUTH_HEADER_INVALID'],
      ['garbage token', '/echo', { authorization: 'Bearer not-a-token' }, 401, 'TOKEN_INVALID'],
      ['tampered JWT', '/echo', { authorization: `Bearer ${jwt.slice(0, -2)}xx` }, 401, 'TOKEN_INVALID'],
      ['unknown key with a valid checksum', '/echo', { authorization: `Bearer ${apiKeyFormat().generate().key}` }, 401, 'KEY_UNKNOWN'],
      ['key of another environment', '/echo', { authorization: `Bearer ${apiKeyFormat('sk_test_').generate().key}` }, 401, 'KEY_MALFORMED'],
      ['lowercase bearer scheme', '/echo', { authorization: `bearer ${apiKeyFormat().generate().key}` }, 401, 'KEY_UNKNOWN'],
      ['two Authorization headers', '/echo', { authorization: `Bearer ${key}`, Authorization: `Bearer ${key}` }, 400, 'AUTH_HEADER_INVALID'],
      ['unknown route', '/nowhere', { authorization: `Bearer ${key}` }, 404, 'ROUTE_NOT_FOUND'],
      ['dot segments', '/public/../echo', {}, 400, 'PATH_INVALID'],
      ['encoded slash', '/public%2F..%2Fecho', {}, 400, 'PATH_INVALID'],
      ['upstream down', '/down', { authorization: `Bearer ${key}` }, 502, 'UPSTREAM_UNAVAILABLE'],
      ['upstream too slow', '/slow', { authorization: `Bearer ${key}` }, 504, 'UPSTREAM_TIMEOUT'],
    ]
    for (const [label, path, headers, status, code] of cases) {
      const res = await rawRequest(kg.port, [`GET ${path} HTTP/1.1`, 'Host: test', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close'])
      t.match(res, new RegExp(`^HTTP/1.1 ${status} `), `${label}: ${status}`)
      t.match(res, new RegExp(`"code":"${code}"`), `${label}: ${code}`)
      t.match(res, /content-type: application\/problem\+json/i)
    }
    const missing = await call(kg.url, 'GET', '/echo')
    t.equal(missing.headers.get('www-authenticate'), 'Bearer', 'no credential: a bare Bearer challenge')
    t.equal(missing.json.detail, 'Authentication credentials required')
  })

  await t.test('a path a route serves, asked with a method none of its routes accepts, is 405 with Allow', async (t) => {
    echo.seen.length = 0
    for (const [path, allow] of [['/readonly/report', 'GET, HEAD'], ['/readonly/upload/x', 'GET, HEAD, POST']] as const) {
      const res = await call(kg.url, 'DELETE', path, { token: key })
      t.equal(res.status, 405, `DELETE ${path}`)
      t.equal(res.json.code, 'METHOD_NOT_ALLOWED')
      t.equal(res.headers.get('allow'), allow, 'Allow lists the methods of every route matching the path')
      t.equal(res.headers.get('content-type'), 'application/problem+json')
    }
    t.equal((await call(kg.url, 'POST', '/readonly/report')).status, 405, 'before any credential is asked for')
    t.equal(echo.seen.length, 0, 'nothing reached the upstream')
    t.equal((await call(kg.url, 'GET', '/readonly/report', { token: key })).status, 200, 'an allowed method goes through')
    t.equal((await call(kg.url, 'DELETE', '/nowhere', { token: key })).json.code, 'ROUTE_NOT_FOUND', 'a path no route serves stays 404')
  })

  await t.test('a request id is generated when absent and kept when given', async (t) => {
    echo.seen.length = 0
    const given = await call(kg.url, 'GET', '/public', { headers: { 'x-request-id': 'abc-123' } })
    t.equal(given.headers.get('x-request-id'), 'abc-123')
    t.equal(echo.seen[0]!.headers['x-request-id'], 'abc-123')
    const fresh = await call(kg.url, 'GET', '/public')
    t.match(fresh.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
  })

  await t.test('the gateway publishes its keys, its health and its readiness', async (t) => {
    t.match(jwks, { keys: [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: String }] })
    t.notOk('d' in jwks.keys[0], 'the private part is never published')
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
    const health = await call(kg.url, 'GET', '/healthz')
    t.equal(health.status, 200)
    t.same(health.json, { status: 'ok', version }, '/healthz tells the version')
    const listening = kg.logs.map((l) => JSON.parse(l) as { msg: string; version?: string }).find((l) => l.msg === 'keygate listening')
    t.equal(listening?.version, version, 'so does the listening line')
    t.equal((await call(kg.url, 'GET', '/readyz')).status, 200)
    const metrics = await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text())
    t.match(metrics, /keygate_requests_total\{route="echo",method="GET",status_class="2xx",auth="api_key"\} \d+/)
    t.match(metrics, /keygate_auth_failures_total\{code="AUTH_REQUIRED"\} \d+/)
    t.notOk(metrics.includes(key) || metrics.includes(jwt), 'no credential in a metric')
  })
})
