import t, { type Test } from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Hostile request targets, sent over raw sockets so every byte is exactly as written. Each one ends in its
 * documented status and code and forwards nothing, or, where the target is harmless, reaches the upstream of
 * the route it names and no other, with the path the upstream gets stated. Routes: `/public` (no credential),
 * `/private` (any credential), `/admin` (scope `admin`) with a public `GET /admin/health` inside it, and
 * `/reports` (GET and HEAD only).
 */

/** What must happen: refused with a status and code (nothing forwarded), or forwarded once as `url`. */
type Outcome = { refused: number; code: string } | { forwardedAs: string }
/** label, request target (latin1 bytes), outcome, and optionally the method and extra header lines. */
type Row = readonly [label: string, target: string, outcome: Outcome, options?: { method?: string; headers?: string[]; withKey?: boolean }]

const refused = (status: number, code: string): Outcome => ({ refused: status, code })
const forwarded = (url: string): Outcome => ({ forwardedAs: url })
const INVALID = refused(400, 'PATH_INVALID')
const MALFORMED = refused(400, 'REQUEST_MALFORMED')
const NO_ROUTE = refused(404, 'ROUTE_NOT_FOUND')
const NOT_ALLOWED = refused(405, 'METHOD_NOT_ALLOWED')
const NEEDS_AUTH = refused(401, 'AUTH_REQUIRED')

const DOT_SEGMENTS: Row[] = [
  ['plain ..', '/public/a/../b', INVALID],
  ['.. as the last segment', '/public/..', INVALID],
  ['.. right after the root', '/..', INVALID],
  ['. segment', '/public/./b', INVALID],
  ['%2e%2e', '/public/a/%2e%2e/b', INVALID],
  ['%2E%2E', '/public/a/%2E%2E/b', INVALID],
  ['.%2e', '/public/a/.%2e/b', INVALID],
  ['%2e.', '/public/a/%2e./b', INVALID],
  ['%2e alone', '/public/a/%2e/b', INVALID],
  ['an encoded dot inside a name (%2e is refused anywhere)', '/public/file%2ejson', INVALID],
  ['..; (path parameters on a dot segment)', '/public/a/..;/b', INVALID],
  ['..;jsessionid=…', '/public/a/..;jsessionid=1/b', INVALID],
  ['..%3b', '/public/a/..%3b/b', INVALID],
  ['.;', '/public/.;/b', INVALID],
]

const SEPARATORS: Row[] = [
  ['%2f', '/public/a%2fb', INVALID],
  ['%2F', '/public/a%2Fb', INVALID],
  ['%5c', '/public/a%5cb', INVALID],
  ['%5C', '/public/a%5Cb', INVALID],
  ['raw backslash', '/public/a\\b', INVALID],
  ['raw backslash as the separator of a dot segment', '/public\\..\\b', INVALID],
  ['double-encoded slash stays encoded, on its route', '/public/a%252fb', forwarded('/public/a%252fb')],
]

const OVERLONG_UTF8: Row[] = [
  ['%c0%ae%c0%ae (overlong ..)', '/public/%c0%ae%c0%ae/b', INVALID],
  ['%c0%af (overlong /)', '/public/a%c0%afb', INVALID],
  ['%e0%80%ae (3-byte overlong .)', '/public/%e0%80%ae/b', INVALID],
  ['%c1%9c (overlong backslash)', '/public/a%c1%9cb', INVALID],
  ['%f0%80%80%af (4-byte overlong /)', '/public/a%f0%80%80%afb', INVALID],
  ['%ed%a0%80 (an encoded surrogate)', '/public/a%ed%a0%80', INVALID],
  ['%ff (never valid UTF-8)', '/public/a%ff', INVALID],
  ['%c3 (truncated sequence)', '/public/a%c3', INVALID],
  ['% at the end', '/public/a%', INVALID],
  ['%zz', '/public/a%zz', INVALID],
  ['raw byte 0xe9 (not ASCII on the wire)', '/public/caf\u00e9', MALFORMED],
]

const NUL_AND_CONTROLS: Row[] = [
  ['%00', '/public/a%00b', INVALID],
  ['%00 before a dot segment', '/public/%00/../b', INVALID],
  ['raw NUL', '/public/a\u0000b', MALFORMED],
  ['%01', '/public/a%01b', INVALID],
  ['%09 (tab)', '/public/a%09b', INVALID],
  ['%0a (LF)', '/public/a%0ab', INVALID],
  ['%0d (CR)', '/public/a%0db', INVALID],
  ['%0d%0a with a header after it (response splitting)', '/public/a%0d%0aX-Injected:%20yes', INVALID],
  ['%1b (ESC)', '/public/a%1bb', INVALID],
  ['%1f', '/public/a%1fb', INVALID],
  ['%7f (DEL)', '/public/a%7fb', INVALID],
  ['raw 0x01', '/public/a\u0001b', MALFORMED],
  ['raw tab', '/public/a\tb', MALFORMED],
  ['raw ESC', '/public/a\u001bb', MALFORMED],
  ['raw DEL', '/public/a\u007fb', MALFORMED],
  ['raw CR', '/public/a\rb', MALFORMED],
  ['raw LF', '/public/a\nb', MALFORMED],
]

const PUBLIC_TO_PROTECTED: Row[] = [
  ['/public/../private', '/public/../private', INVALID],
  ['/public/%2e%2e/private', '/public/%2e%2e/private', INVALID],
  ['/public/%2E%2E/private', '/public/%2E%2E/private', INVALID],
  ['/public%2f..%2fprivate', '/public%2f..%2fprivate', INVALID],
  ['/public%2F..%2Fprivate', '/public%2F..%2Fprivate', INVALID],
  ['/public%5c..%5cprivate', '/public%5c..%5cprivate', INVALID],
  ['/public//../private', '/public//../private', INVALID],
  ['/public/..;/private (Servlet-style)', '/public/..;/private', INVALID],
  ['/public;x/../private', '/public;x/../private', INVALID],
  ['/public/%c0%ae%c0%ae/private', '/public/%c0%ae%c0%ae/private', INVALID],
  ['/public#/../private (a fragment is still a path to the parser)', '/public#/../private', INVALID],
  ['/admin/health/../users', '/admin/health/../users', INVALID],
  ['/admin/health/%2e%2e/users', '/admin/health/%2e%2e/users', INVALID],
  ['/admin/health%2f..%2fusers', '/admin/health%2f..%2fusers', INVALID],
  ['/admin/health;/../users', '/admin/health;/../users', INVALID],
  ['/admin/healthx is not /admin/health: the protected route answers', '/admin/healthx', NEEDS_AUTH],
  ['/admin/health;x is not /admin/health either', '/admin/health;x', NEEDS_AUTH],
  ['/public?/../private: a query is not a path; it stays on the public route', '/public?/../private', forwarded('/public?/../private')],
  ['/public/%252e%252e/private: double encoding stays encoded, on the public route', '/public/%252e%252e/private', forwarded('/public/%252e%252e/private')],
  ['fullwidth dots stay encoded, on the public route', '/public/%ef%bc%8e%ef%bc%8e/private', forwarded('/public/%ef%bc%8e%ef%bc%8e/private')],
]

// Prefixes match case-insensitively (upstream frameworks route so), and the path goes upstream as it was sent.
const CASE_AND_SPELLING: Row[] = [
  ['/Public', '/Public', forwarded('/Public')],
  ['/PUBLIC/x', '/PUBLIC/x', forwarded('/PUBLIC/x')],
  ['/Private', '/Private', NEEDS_AUTH],
  ['/PRIVATE', '/PRIVATE', NEEDS_AUTH],
  ['/Admin/health', '/Admin/health', forwarded('/Admin/health')],
  ['/ADMIN/users (the protected area in another case)', '/ADMIN/users', NEEDS_AUTH],
  ['/%50rivate (decodes to /Private)', '/%50rivate', NEEDS_AUTH],
  ['/%70rivate (decodes to /private: the protected route answers)', '/%70rivate', NEEDS_AUTH],
  ['/%70ublic/x (decodes to /public/x)', '/%70ublic/x', forwarded('/public/x')],
  ['/admin/%68ealth (decodes to the public health route)', '/admin/%68ealth', forwarded('/admin/health')],
  ['//private', '//private', NEEDS_AUTH],
  ['///private//x', '///private//x', NEEDS_AUTH],
  ['/private/', '/private/', NEEDS_AUTH],
  ['/privateX (prefixes match whole segments)', '/privateX', NO_ROUTE],
  ['/private;x (; ends the segment for matching)', '/private;x', NEEDS_AUTH],
  ['/public/x#frag (a raw fragment)', '/public/x#frag', INVALID],
  ['//public//x collapses', '//public//x', forwarded('/public/x')],
  ['//evil/public is a path, not an authority', '//evil/public', NO_ROUTE],
  ['control: /public', '/public', forwarded('/public')],
  ['control: /admin/health', '/admin/health', forwarded('/admin/health')],
]

const TARGET_FORMS: Row[] = [
  ['absolute-form to a protected path', 'http://evil/private', INVALID],
  ['absolute-form to a public path', 'http://evil/public', INVALID],
  ['absolute-form naming the gateway itself', 'http://127.0.0.1/public', INVALID],
  ['absolute-form, https and upper case', 'HTTPS://evil/private', INVALID],
  ['asterisk-form with OPTIONS', '*', INVALID, { method: 'OPTIONS' }],
  ['asterisk-form with GET', '*', INVALID],
  ['a relative path', 'private', MALFORMED],
  ['a relative path with segments', 'public/x', MALFORMED],
  ['a query alone', '?x=1', MALFORMED],
]

const LONG: Row[] = [
  ['an 8 KB segment on the public route', `/public/${'a'.repeat(8000)}`, forwarded(`/public/${'a'.repeat(8000)}`)],
  ['an 8 KB segment on a protected route', `/private/${'a'.repeat(8000)}`, NEEDS_AUTH],
  ['3000 segments', `/public${'/a'.repeat(3000)}`, forwarded(`/public${'/a'.repeat(3000)}`)],
  ['5000 slashes collapse', `/public${'/'.repeat(5000)}x`, forwarded('/public/x')],
  ['2000 dot segments', `/public${'/..'.repeat(2000)}/private`, INVALID],
  ['3000 encoded unreserved characters are decoded', `/public/${'%61'.repeat(3000)}`, forwarded(`/public/${'a'.repeat(3000)}`)],
  ['a target past KEYGATE_MAX_HEADER_BYTES', `/public/${'a'.repeat(20_000)}`, refused(431, 'HEADERS_TOO_LARGE')],
  ['a query past KEYGATE_MAX_HEADER_BYTES', `/public?q=${'a'.repeat(20_000)}`, refused(431, 'HEADERS_TOO_LARGE')],
]

const QUERIES: Row[] = [
  ['raw 0x01', '/public?q=a\u0001b', MALFORMED],
  ['raw tab', '/public?q=a\tb', MALFORMED],
  ['raw NUL', '/public?q=a\u0000b', MALFORMED],
  ['raw ESC', '/public?q=a\u001bb', MALFORMED],
  ['raw DEL', '/public?q=a\u007fb', MALFORMED],
  ['raw CR', '/public?q=a\rb', MALFORMED],
  ['raw backslash', '/public?q=a\\b', INVALID],
  ['encoded controls are the upstream\'s to read, passed on encoded', '/public?q=%00%01%0d%0a%7f', forwarded('/public?q=%00%01%0d%0a%7f')],
  ['an encoded CRLF and header stay in the query', '/public?x=%0d%0aX-Injected:%20yes', forwarded('/public?x=%0d%0aX-Injected:%20yes')],
  ['encoded controls on a protected route without a credential', '/private?q=%00%0a', NEEDS_AUTH],
]

const OVERRIDE_HEADERS: Array<readonly [label: string, headers: string[]]> = [
  ['X-HTTP-Method-Override: DELETE', ['X-HTTP-Method-Override: DELETE']],
  ['X-HTTP-Method: DELETE', ['X-HTTP-Method: DELETE']],
  ['X-Method-Override: DELETE', ['X-Method-Override: DELETE']],
  ['lower case', ['x-http-method-override: PUT']],
  ['upper case', ['X-HTTP-METHOD-OVERRIDE: DELETE']],
  ['underscores', ['X_HTTP_Method_Override: DELETE']],
  ['all three at once', ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method: PATCH', 'X-Method-Override: POST']],
  ['the same header twice', ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method-Override: PUT']],
]
const OVERRIDE_ROUTES = ['/reports', '/public'] as const

// Methods a GET-only route does not admit, whatever an override header claims.
const METHODS: Row[] = [
  ['DELETE on a GET-only route', '/reports', NOT_ALLOWED, { method: 'DELETE', withKey: true }],
  ['POST claiming to be a GET', '/reports', NOT_ALLOWED, { method: 'POST', headers: ['X-HTTP-Method-Override: GET', 'Content-Length: 0'], withKey: true }],
  ['PUT claiming to be a GET', '/reports', NOT_ALLOWED, { method: 'PUT', headers: ['X-Method-Override: GET', 'Content-Length: 0'], withKey: true }],
  ['POST to the public GET-only health route', '/admin/health', NEEDS_AUTH, { method: 'POST', headers: ['X-HTTP-Method-Override: GET', 'Content-Length: 0'] }],
]

const OVERRIDE_NAMES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

t.test('hostile request targets', async (t) => {
  const { echo, kg } = await echoGateway(t, 'adv_paths', { routes: `
    - { name: public, prefix: /public, upstream: echo, auth: public }
    - { name: private, prefix: /private, upstream: echo }
    - { name: admin-health, prefix: /admin/health, methods: [GET], upstream: echo, auth: public }
    - { name: admin-area, prefix: /admin, upstream: echo, scopes: [admin] }
    - { name: reports, prefix: /reports, methods: [GET, HEAD], upstream: echo }
  `, env: { KEYGATE_CONFIG_WATCH: 'false' } })
  const login = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: login.access_token, body: { name: 'paths' } })).json.api_key

  /** Sends `method target HTTP/1.1` byte for byte; the answer and what the upstream received meanwhile. */
  async function send(target: string, options: Row[3] = {}) {
    const lines = [`${options.method ?? 'GET'} ${target} HTTP/1.1`, 'Host: keygate.test', ...(options.withKey ? [`Authorization: Bearer ${key}`] : []), ...(options.headers ?? []), 'Connection: close']
    const before = echo.seen.length
    const { response, timedOut } = await rawExchange(kg.port, Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), 5000)
    return { response, timedOut, ...statusAndCode(response), forwarded: echo.seen.slice(before) }
  }

  async function check(t: Test, rows: readonly Row[]) {
    for (const [label, target, outcome, options] of rows) {
      const res = await send(target, options)
      t.notOk(res.timedOut, `${label}: answered`)
      if ('refused' in outcome) {
        t.same({ status: res.status, code: res.code }, { status: outcome.refused, code: outcome.code }, `${label}: ${outcome.refused} ${outcome.code}`)
        t.match(res.response, /\r\ncontent-type: application\/problem\+json\r\n/i, `${label}: a problem document`)
        t.same(res.forwarded, [], `${label}: nothing reaches the upstream`)
      } else {
        t.equal(res.status, 200, `${label}: 200 from the upstream`)
        t.same(res.forwarded.map((r) => `${r.method} ${r.url}`), [`GET ${outcome.forwardedAs}`], `${label}: forwarded once, as ${outcome.forwardedAs.length > 60 ? `${outcome.forwardedAs.slice(0, 60)}…` : outcome.forwardedAs}`)
        t.notOk(res.forwarded.some((r) => 'x-injected' in r.headers), `${label}: no header made from the target`)
      }
    }
  }

  await t.test('dot segments, plain, encoded or with path parameters, are refused', (t) => check(t, DOT_SEGMENTS))
  await t.test('encoded separators and backslashes are refused', (t) => check(t, SEPARATORS))
  await t.test('overlong and invalid UTF-8 is refused', (t) => check(t, OVERLONG_UTF8))
  await t.test('NUL and control characters are refused, encoded (PATH_INVALID) or raw (REQUEST_MALFORMED)', (t) => check(t, NUL_AND_CONTROLS))
  await t.test('a public route never leads to a protected one', (t) => check(t, PUBLIC_TO_PROTECTED))
  await t.test('routing is case-insensitive and spelling tricks meet the route they spell', (t) => check(t, CASE_AND_SPELLING))
  await t.test('absolute-form, asterisk-form and relative targets are refused', (t) => check(t, TARGET_FORMS))
  await t.test('long targets are routed like short ones, up to the header limit', (t) => check(t, LONG))
  await t.test('control characters in the query are refused raw and passed on encoded', (t) => check(t, QUERIES))

  await t.test('a CONNECT (authority-form target) is never forwarded', async (t) => {
    const before = echo.seen.length
    const { response, timedOut } = await rawExchange(kg.port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 5000)
    t.notOk(timedOut, 'the connection ends at once')
    t.equal(echo.seen.length, before, 'nothing reaches the upstream')
    // The gateway has no CONNECT handler, so Node closes the connection without an answer.
    t.same(statusAndCode(response), { status: 400, code: 'PATH_INVALID' }, 'answered like any target not starting with "/"')
  })

  await t.test('method override headers neither change the method nor reach the upstream', async (t) => {
    for (const [label, headers] of OVERRIDE_HEADERS) {
      for (const path of OVERRIDE_ROUTES) {
        const res = await send(path, { headers, withKey: path === '/reports' })
        t.equal(res.status, 200, `${label} on ${path}: 200`)
        t.same(res.forwarded.map((r) => r.method), ['GET'], `${label} on ${path}: the upstream sees GET`)
        const names = res.forwarded.flatMap((r) => r.rawHeaders.filter((_, i) => i % 2 === 0)).map((n) => n.toLowerCase().replaceAll('_', '-'))
        t.notOk(names.some((n) => OVERRIDE_NAMES.has(n)), `${label} on ${path}: no override header arrives`)
      }
    }
    await check(t, METHODS)
  })

  await t.test('no secret reaches the log', async (t) => {
    t.same(leakedSecrets(kg.logs, [BOOTSTRAP.password, key, login.access_token, login.refresh_token]), [])
  })
})
