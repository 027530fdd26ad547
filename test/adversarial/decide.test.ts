import t from 'tap'
import { echoGateway } from '../helpers/echo-gateway.ts'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { identityApp, startCaddyForwardAuth, startNginxForwardAuth } from '../helpers/ingress.ts'
import { leakedSecrets, rawRequest, statusAndCode } from '../helpers/raw-http.ts'

/**
 * Hostile use of the decision endpoint (`/_keygate/decide`): a client that is no trusted proxy stating the
 * request it would like judged, a forwarded URI built to mean one route to Keygate and another to the
 * application, and a method smuggled past the decision. Each is tried on Keygate directly and, where an
 * ingress could be the way in, through the shipped nginx and Caddy configurations.
 */
const ROUTES = `
- { name: app, prefix: /app, upstream: echo }
- { name: public, prefix: /public, upstream: echo, auth: public }
- { name: read, prefix: /read, methods: [GET, HEAD], upstream: echo, auth: public }
`

t.test('a peer outside KEYGATE_TRUSTED_PROXIES gets no decision, whatever it states and however', async (t) => {
  // 127.0.0.1 (the test) is not among them.
  const { kg } = await echoGateway(t, 'adv_decide_untrusted', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '10.9.9.9' } })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'adv' } })).json.api_key
  const attempts: Array<[string, Record<string, string>, string?]> = [
    ['nginx headers forging a public route', { 'x-original-uri': '/public/x', 'x-original-method': 'GET' }],
    ['nginx headers with a key', { 'x-original-uri': '/app/x', 'x-original-method': 'GET', authorization: `Bearer ${key}` }],
    ['Caddy / Traefik headers', { 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'GET', authorization: `Bearer ${key}` }],
    ['Envoy path', { authorization: `Bearer ${key}` }, '/_keygate/decide/app/x'],
    ['its own X-Forwarded-For naming a trusted proxy', { 'x-original-uri': '/app/x', 'x-original-method': 'GET', 'x-forwarded-for': '10.9.9.9', authorization: `Bearer ${key}` }],
  ]
  for (const [what, headers, path] of attempts) {
    const res = await fetch(kg.url + (path ?? '/_keygate/decide'), { headers })
    t.equal(res.status, 403, what)
    t.equal((await res.json()).code, 'DECISION_PEER_UNTRUSTED', what)
    t.equal(res.headers.get('x-keygate-identity'), null, `${what}: no identity is signed for it`)
  }
  t.same(leakedSecrets(kg.logs, [key]), [], 'the key is in no log line')
  const { kg: closed } = await echoGateway(t, 'adv_decide_default', { routes: ROUTES })
  const res = await fetch(`${closed.url}/_keygate/decide`, { headers: { 'x-original-uri': '/public/x', 'x-original-method': 'GET' } })
  t.equal(res.status, 403, 'with no trusted proxy configured (the default) the endpoint answers nobody')
})

t.test('through the ingress, a client cannot state the route it wants judged', async (t) => {
  const { kg } = await echoGateway(t, 'adv_decide_forge', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1' } })
  const app = await identityApp(`${kg.url}/.well-known/jwks.json`)
  t.teardown(() => app.close())
  for (const start of [startNginxForwardAuth, startCaddyForwardAuth]) {
    const ingress = await start(`127.0.0.1:${kg.port}`, app.address)
    t.teardown(() => ingress.stop())
    app.seen.length = 0
    const forged = {
      'x-original-uri': '/public/x', 'x-original-method': 'GET',
      'x-forwarded-uri': '/public/x', 'x-forwarded-method': 'GET', 'x-forwarded-host': 'elsewhere.example',
    }
    const res = await fetch(`${ingress.url}/app/secret`, { headers: forged })
    t.equal(res.status, 401, `${start.name}: the request is judged as /app/secret`)
    t.equal((await res.json()).code, 'AUTH_REQUIRED')
    t.equal(app.seen.length, 0, `${start.name}: nothing reached the application`)
  }
  // An ingress that let a client's headers through beside its own is refused, not guessed at.
  const both = await fetch(`${kg.url}/_keygate/decide`, { headers: { 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'GET', 'x-original-uri': '/public/x', 'x-original-method': 'GET' } })
  t.equal(both.status, 400)
  t.equal((await both.json()).code, 'DECISION_REQUEST_INVALID')
})

t.test('a forwarded URI that could mean another path upstream is refused as the proxy refuses it', async (t) => {
  const { kg } = await echoGateway(t, 'adv_decide_paths', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1' } })
  const decide = (uri: string) => fetch(`${kg.url}/_keygate/decide`, { headers: { 'x-original-uri': uri, 'x-original-method': 'GET' } })
  const confusing: Array<[string, number, string]> = [
    ['/public/..%2fapp/x', 400, 'PATH_INVALID'],
    ['/public/%2e%2e/app/x', 400, 'PATH_INVALID'],
    ['/public/../app/x', 400, 'PATH_INVALID'],
    ['/public/..;/app/x', 400, 'PATH_INVALID'],
    ['/public%2f..%2fapp', 400, 'PATH_INVALID'],
    ['/public%5c..%5capp', 400, 'PATH_INVALID'],
    ['/public/x#/../../app', 400, 'PATH_INVALID'],
    ['/public/%00/x', 400, 'PATH_INVALID'],
    ['http://elsewhere/public/x', 400, 'PATH_INVALID'],
    ['public/x', 400, 'PATH_INVALID'],
    ['', 400, 'PATH_INVALID'],
    ['/%61pp/x', 401, 'AUTH_REQUIRED'],
    ['//app/x', 401, 'AUTH_REQUIRED'],
    ['/APP/x', 401, 'AUTH_REQUIRED'],
    ['/app;x=/public', 401, 'AUTH_REQUIRED'],
    ['/public;/../app', 400, 'PATH_INVALID'],
    ['/app/x?next=/public', 401, 'AUTH_REQUIRED'],
    ['/_keygate/decide', 404, 'ROUTE_NOT_FOUND'],
    ['/%5fkeygate/decide', 404, 'ROUTE_NOT_FOUND'],
  ]
  for (const [uri, status, code] of confusing) {
    const res = await decide(uri)
    t.equal(res.status, status, uri)
    t.equal((await res.json()).code, code, uri)
  }
  const query = await decide('/public/x?redirect=/app/../app/x')
  t.equal(query.status, 200, 'a query string is not a path: /public/x?… is the public route')
})

t.test('a method cannot be smuggled past the decision', async (t) => {
  const { kg } = await echoGateway(t, 'adv_decide_methods', { routes: ROUTES, env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1' } })
  const decide = (headers: Record<string, string>) => fetch(`${kg.url}/_keygate/decide`, { headers: { 'x-original-uri': '/read/x', ...headers } })
  t.equal((await decide({ 'x-original-method': 'GET' })).status, 200, 'the method the route takes')
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ['another method', { 'x-original-method': 'DELETE' }, 405, 'METHOD_NOT_ALLOWED'],
    ['an override header', { 'x-original-method': 'GET', 'x-http-method-override': 'DELETE' }, 400, 'DECISION_REQUEST_INVALID'],
    ['X-HTTP-Method', { 'x-original-method': 'GET', 'x-http-method': 'DELETE' }, 400, 'DECISION_REQUEST_INVALID'],
    ['X-Method-Override', { 'x-original-method': 'GET', 'x-method-override': 'DELETE' }, 400, 'DECISION_REQUEST_INVALID'],
    ['lower case', { 'x-original-method': 'get' }, 400, 'DECISION_REQUEST_INVALID'],
    ['a list', { 'x-original-method': 'GET, DELETE' }, 400, 'DECISION_REQUEST_INVALID'],
    ['padding and a second token', { 'x-original-method': 'GET DELETE' }, 400, 'DECISION_REQUEST_INVALID'],
    ['none', {}, 400, 'DECISION_REQUEST_INVALID'],
  ]
  for (const [what, headers, status, code] of cases) {
    const res = await decide(headers)
    t.equal(res.status, status, what)
    t.equal((await res.json()).code, code, what)
  }
  for (const lines of [
    ['X-Original-Method: GET', 'X-Original-Method: DELETE'],
    ['X-Original-Method: GET', 'X_HTTP_Method_Override: DELETE'],
  ]) {
    const raw = await rawRequest(kg.port, ['GET /_keygate/decide HTTP/1.1', 'Host: x', 'X-Original-URI: /read/x', ...lines])
    t.same(statusAndCode(raw), { status: 400, code: 'DECISION_REQUEST_INVALID' }, lines.join(' + '))
  }
  // Through nginx: the method is nginx's own view of the request, and an override header is refused.
  const app = await identityApp(`${kg.url}/.well-known/jwks.json`)
  t.teardown(() => app.close())
  const nginx = await startNginxForwardAuth(`127.0.0.1:${kg.port}`, app.address)
  t.teardown(() => nginx.stop())
  const deleted = await fetch(`${nginx.url}/read/x`, { method: 'DELETE', headers: { 'x-original-method': 'GET' } })
  t.equal(deleted.status, 405, 'a DELETE stating GET is judged as DELETE')
  t.equal(deleted.headers.get('allow'), 'GET, HEAD')
  const override = await fetch(`${nginx.url}/read/x`, { headers: { 'x-http-method-override': 'DELETE' } })
  t.equal(override.status, 400)
  t.equal((await override.json()).code, 'DECISION_REQUEST_INVALID')
  t.equal(app.seen.length, 0, 'nothing reached the application')
  t.same(leakedSecrets(kg.logs, [BOOTSTRAP.password]), [], 'no secret in a log line')
})
