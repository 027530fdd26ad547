import t from 'tap'
import { verifyIdentity } from '@keygate/verify'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Hostile input: a client that tries to pass itself off as someone else by sending the headers the gateway
 * owns (the signed identity, the plain identity headers, the forwarding headers, the request id, method
 * overrides) in every spelling an upstream framework might fold together: any case, `_` for `-` (the
 * oauth2-proxy CVE-2025-64484 pattern: CGI, WSGI and Rack read `X_User_Id` as `X-User-Id`), repeated, padded,
 * empty, folded. Requests are written on raw sockets so every byte is exactly as listed.
 *
 * A spelling the HTTP parser accepts is forwarded with every client-supplied copy removed and exactly one
 * genuine value of each header the gateway sets; a spelling it rejects (obs-fold, whitespace before the colon)
 * is answered 400 and nothing reaches the upstream.
 */

/** The reserved names a client tries to set: every family the gateway strips, with a made-up member of each prefix family. */
const RESERVED = [
  'x-keygate-identity', 'x-keygate-client-address', 'x-keygate-user',
  'x-user-id', 'x-username', 'x-auth-method', 'x-api-key-id',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port',
  'forwarded', 'x-real-ip',
  'x-http-method-override', 'x-http-method', 'x-method-override',
] as const

const upper = (n: string) => n.toUpperCase()
const title = (n: string) => n.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase())
const mixed = (n: string) => [...n].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('')
const under = (n: string) => n.replaceAll('-', '_')

interface Form { form: string; lines(name: string, value: string): string[] }

/** Spellings Node's parser accepts: the request is forwarded, without the client's copy. */
const ACCEPTED_FORMS: Form[] = [
  { form: 'lower case', lines: (n, v) => [`${n}: ${v}`] },
  { form: 'upper case', lines: (n, v) => [`${upper(n)}: ${v}`] },
  { form: 'Title-Case', lines: (n, v) => [`${title(n)}: ${v}`] },
  { form: 'mIxEd case', lines: (n, v) => [`${mixed(n)}: ${v}`] },
  { form: 'underscores', lines: (n, v) => [`${under(n)}: ${v}`] },
  { form: 'UPPER_UNDERSCORES', lines: (n, v) => [`${upper(under(n))}: ${v}`] },
  { form: 'one underscore among dashes', lines: (n, v) => [`${n.replace('-', '_')}: ${v}`] },
  { form: 'duplicated', lines: (n, v) => [`${n}: ${v}`, `${title(n)}: ${v}-again`] },
  { form: 'duplicated across spellings', lines: (n, v) => [`${title(n)}: ${v}`, `${under(n)}: ${v}-under`, `${upper(n)}: ${v}-upper`] },
  { form: 'spaces and tabs around the value', lines: (n, v) => [`${n}:   \t${v} \t  `] },
  { form: 'empty value', lines: (n) => [`${n}:`] },
]

/** Spellings Node's parser rejects (RFC 9112 §5.1, §5.2): 400, the connection closed, nothing forwarded. */
const REJECTED_FORMS: Form[] = [
  { form: 'folded value (obs-fold, space)', lines: (n, v) => [`${n}: ${v}`, `   ${v}-continued`] },
  { form: 'folded under a harmless header (obs-fold, tab)', lines: (n, v) => ['X-Note: harmless', `\t${n}: ${v}`] },
  { form: 'space before the colon', lines: (n, v) => [`${n} : ${v}`] },
  { form: 'tab before the colon', lines: (n, v) => [`${n}\t: ${v}`] },
]

interface Case { name: string; form: string; lines: string[]; marker: string }

/** Every reserved name in every form, skipping forms that spell a name the same as an earlier one (`forwarded` has no dash). */
function cases(forms: Form[], prefix: string): Case[] {
  const out: Case[] = []
  for (const name of RESERVED) {
    const seen = new Set<string>()
    for (const { form, lines } of forms) {
      const key = JSON.stringify(lines(name, 'V'))
      if (seen.has(key)) continue
      seen.add(key)
      const marker = `${prefix}${out.length}spoof`
      out.push({ name, form, lines: lines(name, marker), marker })
    }
  }
  return out
}

const ACCEPTED = cases(ACCEPTED_FORMS, 'a')
const REJECTED = cases(REJECTED_FORMS, 'r')

/** x-request-id: kept when well formed (pipeline.ts `requestIdOf`), else replaced by a fresh UUID; never two. */
const REQUEST_ID_CASES: Array<{ label: string; lines: string[]; outcome: { kept: string } | 'replaced' | 'rejected' }> = [
  { label: 'well formed, lower case', lines: ['x-request-id: rid-1.a:b_c'], outcome: { kept: 'rid-1.a:b_c' } },
  { label: 'well formed, upper case name', lines: ['X-REQUEST-ID: RID-2'], outcome: { kept: 'RID-2' } },
  { label: 'well formed, mixed case name', lines: ['x-ReQuEsT-iD: rid-3'], outcome: { kept: 'rid-3' } },
  { label: '128 characters (the longest kept)', lines: [`x-request-id: rid-4${'a'.repeat(123)}`], outcome: { kept: `rid-4${'a'.repeat(123)}` } },
  { label: 'spaces and tabs around a well-formed value', lines: ['x-request-id:  \t rid-5 \t '], outcome: { kept: 'rid-5' } },
  { label: '129 characters', lines: [`x-request-id: rid-6${'a'.repeat(124)}`], outcome: 'replaced' },
  { label: 'an inner space', lines: ['x-request-id: rid-7 x'], outcome: 'replaced' },
  { label: 'a slash', lines: ['x-request-id: rid-8/x'], outcome: 'replaced' },
  { label: 'a comma-separated list', lines: ['x-request-id: rid-9,rid-9b'], outcome: 'replaced' },
  { label: 'a non-ASCII byte', lines: ['x-request-id: rid-10\xe9'], outcome: 'replaced' },
  { label: 'a header-injection attempt, percent-encoded', lines: ['x-request-id: rid-11%0d%0ax-user-id:%20admin'], outcome: 'replaced' },
  { label: 'duplicated, both well formed', lines: ['x-request-id: rid-12', 'X-Request-Id: rid-12b'], outcome: 'replaced' },
  { label: 'underscore spelling', lines: ['x_request_id: rid-13'], outcome: 'replaced' },
  { label: 'underscore spelling beside a well-formed one', lines: ['X_REQUEST_ID: rid-14x', 'x-request-id: rid-14'], outcome: { kept: 'rid-14' } },
  { label: 'empty value', lines: ['x-request-id:'], outcome: 'replaced' },
  { label: 'folded (obs-fold)', lines: ['x-request-id: rid-15', ' rid-15b'], outcome: 'rejected' },
  { label: 'space before the colon', lines: ['x-request-id : rid-16'], outcome: 'rejected' },
]

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('identity spoofing: no client-supplied identity reaches the upstream, in any spelling', async (t) => {
  const { echo, kg } = await echoGateway(t, 'adv_spoofing', { routes: `
    - { name: echo, prefix: /echo, upstream: echo }
    - { name: legacy, prefix: /legacy, upstream: echo, audience: legacy, plain_identity_headers: true }
    - { name: open, prefix: /open, upstream: echo, auth: public }
    - { name: maybe, prefix: /maybe, upstream: echo, auth: optional }
  ` })

  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const jwt: string = login.json.access_token
  const alice = { id: login.json.user.id as string }
  const created = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'spoofing' } })
  const key: string = created.json.api_key
  const keyId: string = created.json.id
  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  const bobPassword = 'bob has a long password too'
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/users', { token: jwt, body: { username: 'bob', email: 'bob@example.com', password: bobPassword } })).status, 201)
  const bobLogin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'bob', password: bobPassword } })).json
  // A genuine identity assertion of another user, as a client could capture it from a leaky upstream.
  echo.seen.length = 0
  t.equal((await call(kg.url, 'GET', '/echo/capture', { token: bobLogin.access_token })).status, 200)
  const bobIdentity = echo.seen[0]!.headers['x-keygate-identity'] as string
  t.match(await verifyIdentity(bobIdentity, { keys: jwks.keys, audience: 'echo' }), { ok: true, identity: { username: 'bob' } }, 'a genuine identity of bob, for the echo audience')

  /** Writes the request exactly (latin1, one byte per character) and returns the raw response. */
  async function send(path: string, lines: string[], credential: string | null = key): Promise<string> {
    const head = [`GET ${path} HTTP/1.1`, 'Host: test', ...(credential ? [`Authorization: Bearer ${credential}`] : []), ...lines, 'Connection: close']
    return (await rawExchange(kg.port, Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'))).response
  }

  const normalized = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replaceAll('_', '-'))
  const responseHeader = (response: string, name: string) => new RegExp(`\r\n${name}: ([^\r]*)`, 'i').exec(response)?.[1]

  interface Route { path: string; audience: string; plain: boolean }
  const ECHO: Route = { path: '/echo/spoof', audience: 'echo', plain: false }
  const LEGACY: Route = { path: '/legacy/spoof', audience: 'legacy', plain: true }

  /**
   * What is wrong with what reached the upstream, for a request with alice's key: each header the gateway sets
   * must arrive once with the gateway's value, every other reserved name not at all, and no value the client
   * sent anywhere. An empty list is a pass.
   */
  async function problemsOfForwarded(route: Route, response: string, sent: string[]): Promise<string[]> {
    const problems: string[] = []
    const { status } = statusAndCode(response)
    if (status !== 200) return [`answered ${status}, not forwarded`]
    if (echo.seen.length !== 1) return [`${echo.seen.length} requests reached the upstream`]
    const got = echo.seen[0]!
    if (got.method !== 'GET') problems.push(`the upstream saw ${got.method}`)
    const names = normalized(got.rawHeaders)
    const count = (n: string) => names.filter((x) => x === n).length
    const genuine: Record<string, string | null> = {
      'x-keygate-identity': null, // checked by signature below
      'x-keygate-client-address': '127.0.0.1',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-host': 'test',
      'x-forwarded-proto': 'http',
      'x-request-id': responseHeader(response, 'x-request-id') ?? '(none in the response)',
      ...(route.plain ? { 'x-user-id': alice.id, 'x-username': 'alice', 'x-auth-method': 'api_key', 'x-api-key-id': keyId } : {}),
    }
    for (const name of [...RESERVED, 'x-request-id']) {
      const expected = name in genuine ? 1 : 0
      if (count(name) !== expected) problems.push(`${name} arrived ${count(name)} times, expected ${expected}`)
      const value = got.headers[name]
      if (expected && genuine[name] !== null && value !== genuine[name]) problems.push(`${name} is ${JSON.stringify(value)}, expected ${JSON.stringify(genuine[name])}`)
    }
    const values = got.rawHeaders.filter((_, i) => i % 2 === 1)
    for (const s of sent) if (values.some((v) => v.includes(s))) problems.push(`the client's value ${JSON.stringify(s)} arrived`)
    const verdict = await verifyIdentity(got.headers['x-keygate-identity'], { keys: jwks.keys, audience: route.audience })
    if (!verdict.ok) problems.push(`the identity does not verify: ${verdict.code}`)
    else if (verdict.identity.sub !== alice.id || verdict.identity.auth !== 'api_key' || verdict.identity.keyId !== keyId) problems.push(`the identity is ${JSON.stringify(verdict.identity)}`)
    return problems
  }

  await t.test('a reserved header in any spelling the parser accepts is dropped; the gateway\'s own arrive once', async (t) => {
    for (const route of [ECHO, LEGACY]) {
      for (const c of ACCEPTED) {
        echo.seen.length = 0
        const response = await send(route.path, c.lines)
        t.same(await problemsOfForwarded(route, response, [c.marker]), [], `${c.name}, ${c.form}${route.plain ? ', on a route with plain identity headers' : ''}`)
      }
    }
  })

  await t.test('a reserved header in a spelling the parser rejects is answered 400 and nothing is forwarded', async (t) => {
    for (const c of REJECTED) {
      echo.seen.length = 0
      const { status, code } = statusAndCode(await send(ECHO.path, c.lines))
      t.equal(status, 400, `${c.name}, ${c.form}: 400`)
      if (code !== undefined) t.equal(code, 'REQUEST_MALFORMED', `${c.name}, ${c.form}: REQUEST_MALFORMED`)
      t.equal(echo.seen.length, 0, `${c.name}, ${c.form}: nothing forwarded`)
    }
  })

  await t.test('x-request-id is kept only when well formed, and exactly one arrives', async (t) => {
    for (const c of REQUEST_ID_CASES) {
      echo.seen.length = 0
      const response = await send(ECHO.path, c.lines)
      if (c.outcome === 'rejected') {
        const { status, code } = statusAndCode(response)
        t.equal(status, 400, `${c.label}: 400`)
        if (code !== undefined) t.equal(code, 'REQUEST_MALFORMED', `${c.label}: REQUEST_MALFORMED`)
        t.equal(echo.seen.length, 0, `${c.label}: nothing forwarded`)
        continue
      }
      const sentValues = c.lines.map((l) => l.slice(l.indexOf(':') + 1).trim()).filter(Boolean)
      const kept = typeof c.outcome === 'object' ? c.outcome.kept : undefined
      const problems = await problemsOfForwarded(ECHO, response, sentValues.filter((v) => v !== kept))
      const arrived = echo.seen[0]?.headers['x-request-id']
      if (kept !== undefined && arrived !== kept) problems.push(`x-request-id is ${JSON.stringify(arrived)}, expected ${JSON.stringify(kept)}`)
      if (kept === undefined && !(typeof arrived === 'string' && UUID.test(arrived))) problems.push(`x-request-id ${JSON.stringify(arrived)} is not a fresh UUID`)
      t.same(problems, [], `${c.label}: ${kept === undefined ? 'replaced by a fresh id' : 'kept'}`)
    }
  })

  const ALL_SPELLINGS = (name: string, value: string) => [`${name}: ${value}`, `${upper(under(name))}: ${value}u`, `${title(name)}: ${value}t`]
  const REPLAYS: Array<{ label: string; path: string; credential: string | null; lines: string[]; outcome: 'alice' | 'anonymous' | { status: number; code: string } }> = [
    { label: 'bob\'s genuine identity, with alice\'s key', path: ECHO.path, credential: key, lines: [`x-keygate-identity: ${bobIdentity}`], outcome: 'alice' },
    { label: 'bob\'s genuine identity, underscore spelling, with alice\'s key', path: ECHO.path, credential: key, lines: [`X_Keygate_Identity: ${bobIdentity}`], outcome: 'alice' },
    { label: 'bob\'s genuine identity, twice, with alice\'s key', path: ECHO.path, credential: key, lines: [`x-keygate-identity: ${bobIdentity}`, `X-KEYGATE-IDENTITY: ${bobIdentity}`], outcome: 'alice' },
    { label: 'Connection naming the identity header (hop-by-hop removal of the gateway\'s own)', path: ECHO.path, credential: key, lines: ['Connection: x-keygate-identity, X_Keygate_Identity'], outcome: 'alice' },
    { label: 'Connection naming the forwarding headers and the request id', path: ECHO.path, credential: key, lines: ['Connection: x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-request-id, x-keygate-client-address'], outcome: 'alice' },
    { label: 'bob\'s genuine identity on an optional route, without a credential', path: '/maybe/x', credential: null, lines: [`x-keygate-identity: ${bobIdentity}`], outcome: 'anonymous' },
    { label: 'bob\'s genuine identity on a public route', path: '/open/x', credential: null, lines: [`x_keygate_identity: ${bobIdentity}`], outcome: 'anonymous' },
    { label: 'bob\'s genuine identity on a required route, without a credential', path: ECHO.path, credential: null, lines: [`x-keygate-identity: ${bobIdentity}`], outcome: { status: 401, code: 'AUTH_REQUIRED' } },
    ...RESERVED.flatMap((name) => [
      { label: `${name} in three spellings on an optional route, without a credential`, path: '/maybe/x', credential: null, lines: ALL_SPELLINGS(name, `anon-${name}-spoof`), outcome: 'anonymous' as const },
      { label: `${name} in three spellings on a public route`, path: '/open/x', credential: null, lines: ALL_SPELLINGS(name, `pub-${name}-spoof`), outcome: 'anonymous' as const },
    ]),
    { label: 'every reserved header at once, without a credential, on a required route', path: ECHO.path, credential: null, lines: RESERVED.map((n) => `${n}: all-spoof`), outcome: { status: 401, code: 'AUTH_REQUIRED' } },
  ]

  await t.test('a replayed genuine identity is never taken for the caller\'s, and anonymous requests carry none', async (t) => {
    for (const c of REPLAYS) {
      echo.seen.length = 0
      const response = await send(c.path, c.lines, c.credential)
      const sent = c.lines.map((l) => l.slice(l.indexOf(':') + 1).trim())
      if (c.outcome === 'alice') {
        t.same(await problemsOfForwarded(ECHO, response, sent), [], `${c.label}: forwarded as alice only`)
      } else if (c.outcome === 'anonymous') {
        const got = echo.seen[0]
        const problems: string[] = []
        if (statusAndCode(response).status !== 200 || !got) problems.push(`answered ${statusAndCode(response).status}, ${echo.seen.length} forwarded`)
        else {
          const names = normalized(got.rawHeaders)
          for (const n of ['x-keygate-identity', 'x-user-id', 'x-username', 'x-auth-method', 'x-api-key-id']) if (names.includes(n)) problems.push(`${n} arrived`)
          const values = got.rawHeaders.filter((_, i) => i % 2 === 1)
          for (const s of sent) if (values.some((v) => v.includes(s))) problems.push(`the client's value ${JSON.stringify(s.slice(0, 40))} arrived`)
        }
        t.same(problems, [], `${c.label}: forwarded with no identity at all`)
      } else {
        t.same(statusAndCode(response), c.outcome, `${c.label}: ${c.outcome.status} ${c.outcome.code}`)
        t.equal(echo.seen.length, 0, `${c.label}: nothing forwarded`)
      }
    }
  })

  await t.test('the cases, counted', async (t) => {
    const total = 2 * ACCEPTED.length + REJECTED.length + REQUEST_ID_CASES.length + REPLAYS.length
    t.comment(`reserved names: ${RESERVED.length}; accepted spellings: ${ACCEPTED.length} x 2 routes; rejected spellings: ${REJECTED.length}; x-request-id: ${REQUEST_ID_CASES.length}; replays and anonymous: ${REPLAYS.length}; total: ${total}`)
    t.ok(total > 300)
  })

  await t.test('the log holds none of the secrets used', async (t) => {
    const secrets = [BOOTSTRAP.password, bobPassword, key, jwt, login.json.refresh_token, bobLogin.access_token, bobLogin.refresh_token, bobIdentity]
    t.same(leakedSecrets(kg.logs, secrets), [])
    t.ok(kg.logs.length > 0, 'the log was captured')
  })
})
