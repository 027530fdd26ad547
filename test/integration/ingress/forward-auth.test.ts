import t, { type Test } from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../../helpers/keygate.ts'
import { identityApp, ingressVersion, startCaddyForwardAuth, startNginxForwardAuth, type Ingress } from '../../helpers/ingress.ts'
import { rawRequest } from '../../helpers/raw-http.ts'
import { routeFile } from '../../helpers/upstreams.ts'

/**
 * Decision mode with the real ingresses and the configurations Keygate ships (deploy/nginx-forward-auth.conf,
 * deploy/Caddyfile.forward-auth): the seed's walk through each, in front of an Express application that
 * verifies the signed identity with @keygate/verify. Keygate answers only the ingress's decisions; the
 * application is reached through the ingress alone.
 */
// Keygate never calls the application in decision mode: its upstream address is not used (the audience is its name).
const ROUTES = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: app, prefix: /app, upstream: app }
  - { name: app-public, prefix: /public, upstream: app, auth: public }
  - { name: app-scoped, prefix: /scoped, upstream: app, scopes: [documents:write] }
  - { name: app-plain, prefix: /plain, upstream: app, plain_identity_headers: true }
`)

async function decisions(metricsPort: number, route: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  return Number(new RegExp(`keygate_decisions_total\\{route="${route}",code="ok"\\} (\\d+)`).exec(text)?.[1] ?? 0)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** @param cacheSec KEYGATE_DECISION_CACHE_SEC; `ingressCaches`: whether the shipped configuration keeps decisions. */
async function walk(t: Test, name: 'nginx' | 'caddy', cacheSec: number, ingressCaches: boolean) {
  const kg = await keygateOnPostgres(`ingress_${name}`, { KEYGATE_CONFIG: ROUTES, KEYGATE_DEMOS: 'false', KEYGATE_TRUSTED_PROXIES: '127.0.0.1', KEYGATE_DECISION_CACHE_SEC: String(cacheSec), KEYGATE_MAX_KEYS_PER_USER: '10' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  // The application verifies against the gateway's published keys.
  const verified = await identityApp(`${kg.url}/.well-known/jwks.json`)
  t.teardown(() => verified.close())
  const start = name === 'nginx' ? startNginxForwardAuth : startCaddyForwardAuth
  const ingress: Ingress = await start(`127.0.0.1:${kg.port}`, verified.address)
  t.teardown(() => ingress.stop())
  t.comment(ingressVersion(name))

  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const newKey = async (body: Record<string, unknown>) => (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body })).json.api_key as string
  const key = await newKey({ name: `${name} walk` })
  const through = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => fetch(ingress.url + path, init)

  await t.test('a good key passes, and the application verifies the identity Keygate signed', async (t) => {
    const res = await through('/app/items?x=1', { headers: { authorization: `Bearer ${key}` } })
    t.equal(res.status, 200, ingress.log())
    const body = await res.json()
    t.same(body.verified, { user_id: body.verified.user_id, username: 'alice', auth: 'api_key' })
    t.equal(body.path, '/app/items?x=1', 'the application gets the URI Keygate decided on')
    t.notOk(verified.seen.at(-1)!.headers.authorization, 'the credential stops at the ingress')
    const post = await through('/app/items', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"a":1}' })
    t.equal(post.status, 200)
    t.equal((await post.json()).method, 'POST')
  })

  await t.test('an identity forged by the client never reaches the application', async (t) => {
    verified.seen.length = 0
    const res = await through('/app/x', { headers: { authorization: `Bearer ${key}`, 'x-keygate-identity': 'forged', 'x-user-id': 'admin', 'x-username': 'root' } })
    t.equal(res.status, 200, 'the genuine identity replaced the forged one')
    const seen = verified.seen[0]!.headers
    t.not(seen['x-keygate-identity'], 'forged')
    t.notOk(seen['x-user-id'] || seen['x-username'], 'no plain identity header on a route without them')
    const pub = await through('/public/x', { headers: { 'x-keygate-identity': 'forged', 'x-user-id': 'admin' } })
    t.equal(pub.status, 200)
    t.notOk((await pub.json()).identity_header, 'on a public route without a credential, no identity at all (absent, or empty)')
    verified.seen.length = 0
    const port = Number(new URL(ingress.url).port)
    const raw = await rawRequest(port, ['GET /public/raw HTTP/1.1', `Host: 127.0.0.1:${port}`, 'x_keygate_identity: forged', 'X-Keygate-Identity: forged', 'x_user_id: admin'])
    t.match(raw, /^HTTP\/1.1 200/)
    const values = Object.entries(verified.seen[0]!.headers).filter(([, v]) => String(v).includes('forged') || String(v) === 'admin')
    t.same(values, [], 'no spelling of a forged header arrives')
    const plain = await through('/plain/x', { headers: { authorization: `Bearer ${key}`, 'x-user-id': 'admin' } })
    t.equal(plain.status, 200)
    const plainSeen = verified.seen.at(-1)!.headers
    t.equal(plainSeen['x-username'], 'alice', 'a route with plain identity headers gets Keygate\'s')
    t.not(plainSeen['x-user-id'], 'admin')
  })

  await t.test('denials reach the client as Keygate answers them', async (t) => {
    const none = await through('/app/x')
    t.equal(none.status, 401)
    t.equal(none.headers.get('www-authenticate'), 'Bearer')
    t.equal((await none.json()).code, 'AUTH_REQUIRED')
    const unknown = await through('/app/x', { headers: { authorization: 'Bearer sk_live_0000000000000000000000000000000000000000' } })
    t.equal(unknown.status, 401)
    t.match(unknown.headers.get('www-authenticate'), /invalid_token/)
    const narrow = await newKey({ name: `${name} narrow`, scopes: ['documents:read'] })
    const scoped = await through('/scoped/x', { headers: { authorization: `Bearer ${narrow}` } })
    t.equal(scoped.status, 403)
    t.equal((await scoped.json()).code, 'INSUFFICIENT_SCOPE')
    const nowhere = await through('/nowhere', { headers: { authorization: `Bearer ${key}` } })
    t.equal(nowhere.status, 404)
    t.equal((await nowhere.json()).code, 'ROUTE_NOT_FOUND')
    t.notOk(verified.seen.some((r) => r.url.startsWith('/nowhere') || r.url.startsWith('/scoped')), 'nothing denied reached the application')
  })

  if (ingressCaches) {
    await t.test('a decision past its time is asked again, and the renewed one is kept again', async (t) => {
      const renewed = await newKey({ name: `${name} renewed` })
      const auth = { authorization: `Bearer ${renewed}` }
      for (let round = 0; round < 2; round++) {
        if (round) await sleep(cacheSec * 1000 + 200)
        const before = await decisions(kg.metricsPort, 'app')
        for (let i = 0; i < 5; i++) t.equal((await through('/app/renewed', { headers: auth })).status, 200)
        const asked = (await decisions(kg.metricsPort, 'app')) - before
        t.ok(asked >= 1 && asked < 5, `round ${round + 1}: asked again once the entry was gone, then kept (${asked} asked for 5 requests)`)
      }
    })
  }

  const window = ingressCaches ? cacheSec : 0
  await t.test(`a revoked key is refused through the ingress within ${window} s`, async (t) => {
    const doomed = await newKey({ name: `${name} doomed` })
    const auth = { authorization: `Bearer ${doomed}` }
    const before = await decisions(kg.metricsPort, 'app')
    for (let i = 0; i < 5; i++) t.equal((await through('/app/cached', { headers: auth })).status, 200)
    const asked = (await decisions(kg.metricsPort, 'app')) - before
    if (ingressCaches) t.ok(asked < 5, `the ingress kept the decision (${asked} asked for 5 requests)`)
    else t.equal(asked, 5, 'every request was asked about')
    t.equal((await call(kg.url, 'DELETE', '/api/v1/auth/api-key', { token: doomed })).status, 200)
    // Past the cache time nothing may still let it through.
    await sleep(window * 1000 + 200)
    const res = await through('/app/cached', { headers: auth })
    t.equal(res.status, 401)
    t.equal((await res.json()).code, 'KEY_REVOKED')
  })

  await t.test('no secret in Keygate\'s logs', async (t) => {
    t.notOk(kg.logs.some((l) => l.includes(key)), 'the key never appears')
  })
}

t.test('nginx (auth_request, the decision cached)', async (t) => {
  await walk(t, 'nginx', 2, true)
})

t.test('Caddy (forward_auth, every request asked)', async (t) => {
  await walk(t, 'caddy', 1, false)
})

