import { writeFileSync } from 'node:fs'
import { createServer, request, type IncomingHttpHeaders } from 'node:http'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import pg from 'pg'
import t, { type Test } from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { openApiValidator } from '../helpers/openapi-validator.ts'
import { TEST_DATABASE_URL } from '../helpers/postgres.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { close, listen, routeFile } from '../helpers/upstreams.ts'

/**
 * Hostile input to the admin API, through the gateway. Every attack ends in its documented status and code
 * (never a 500), changes nothing (the users, the keys and the sessions are compared before and after), and
 * what the gateway refuses never reaches the admin API (a recording relay sits in front of its authenticated
 * endpoints).
 */

const LIMIT = 5
const API = '/api/v1/auth'
const BOB = { username: 'bob', password: 'bob password 1', email: 'bob@example.com' }
const CAROL = { username: 'carol', password: 'carol password 1', email: 'carol@example.com' }
const DAVE = { username: 'dave', password: 'dave password 1', email: 'dave@example.com' }

/** A relay in front of the admin API that records every request the gateway forwards to it. */
async function recordingRelay(target: string) {
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    const forward = request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  return { origin: await listen(server), seen, close: () => close(server) }
}

// The public endpoints go straight to the in-process admin API, which believes the client address the gateway
// states only from the gateway itself (with its proof, which no other upstream gets); the rest through `relayed`.
const routes = (relayed: string) => `
upstreams:
  admin: { url: "internal:admin" }
  relayed: { url: "${relayed}" }
routes:
  - { name: login, prefix: ${API}/login, methods: [POST], upstream: admin, auth: public }
  - { name: refresh, prefix: ${API}/refresh, methods: [POST], upstream: admin, auth: public }
  - { name: register, prefix: ${API}/register, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: ${API}, upstream: relayed, audience: admin }
`

// --- wrong-type bodies: every row on every endpoint that takes a body ------------------------------------

type Body = { contentType?: string; encoding?: string; bytes?: string | Buffer }
/** label, the body made from the endpoint's valid body and its first string field, expected status and code. */
type BodyRow = readonly [label: string, body: (valid: Record<string, unknown>, field: string) => Body, status: number, code: string]
const asJson = (value: unknown): Body => ({ contentType: 'application/json', bytes: JSON.stringify(value) })
const jsonText = (text: string): Body => ({ contentType: 'application/json', bytes: text })
const open = (valid: Record<string, unknown>) => JSON.stringify(valid).slice(0, -1)
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

const WRONG_BODIES: BodyRow[] = [
  ['an array', (v) => asJson([v]), 422, 'VALIDATION_FAILED'],
  ['a JSON string', () => asJson('text'), 400, 'BODY_INVALID_JSON'],
  ['a JSON number', () => asJson(42), 400, 'BODY_INVALID_JSON'],
  ['JSON null', () => jsonText('null'), 400, 'BODY_INVALID_JSON'],
  ['JSON true', () => jsonText('true'), 400, 'BODY_INVALID_JSON'],
  ['the field as an object ({"$ne": ""})', (v, f) => asJson({ ...v, [f]: { $ne: '' } }), 422, 'VALIDATION_FAILED'],
  ['the field as an array', (v, f) => asJson({ ...v, [f]: ['a'] }), 422, 'VALIDATION_FAILED'],
  ['the field as a number', (v, f) => asJson({ ...v, [f]: 42 }), 422, 'VALIDATION_FAILED'],
  ['the field as null', (v, f) => asJson({ ...v, [f]: null }), 422, 'VALIDATION_FAILED'],
  ['the field as a boolean', (v, f) => asJson({ ...v, [f]: true }), 422, 'VALIDATION_FAILED'],
  ['the field nested 1000 arrays deep', (v, f) => jsonText(`${open(v)},"${f}":${nested(1000)}}`), 422, 'VALIDATION_FAILED'],
  ['a "__proto__" member', (v) => jsonText(`${open(v)},"__proto__":{"polluted":true}}`), 422, 'VALIDATION_FAILED'],
  ['a "constructor.prototype" member', (v) => jsonText(`${open(v)},"constructor":{"prototype":{"polluted":true}}}`), 422, 'VALIDATION_FAILED'],
  ['an unknown member', (v) => asJson({ ...v, is_superuser: true, role: 'admin' }), 422, 'VALIDATION_FAILED'],
  ['the field twice, the second an object', (v, f) => jsonText(`${open(v)},"${f}":{"x":1}}`), 422, 'VALIDATION_FAILED'],
  ['NaN', (_, f) => jsonText(`{"${f}":NaN}`), 400, 'BODY_INVALID_JSON'],
  ['truncated JSON', (v) => jsonText(open(v)), 400, 'BODY_INVALID_JSON'],
  ['single quotes', (_, f) => jsonText(`{'${f}':'x'}`), 400, 'BODY_INVALID_JSON'],
  ['a trailing comma', (v) => jsonText(`${open(v)},}`), 400, 'BODY_INVALID_JSON'],
  ['an empty body declared as JSON', () => jsonText(''), 422, 'VALIDATION_FAILED'],
  ['no body and no content type', () => ({}), 422, 'VALIDATION_FAILED'],
  ['valid JSON sent as text/plain', (v) => ({ contentType: 'text/plain', bytes: JSON.stringify(v) }), 422, 'VALIDATION_FAILED'],
  ['a form-encoded body', (_, f) => ({ contentType: 'application/x-www-form-urlencoded', bytes: `${f}=x` }), 422, 'VALIDATION_FAILED'],
  ['a multipart body', (_, f) => ({ contentType: 'multipart/form-data; boundary=b', bytes: `--b\r\nContent-Disposition: form-data; name="${f}"\r\n\r\nx\r\n--b--\r\n` }), 422, 'VALIDATION_FAILED'],
  ['valid JSON declared latin1', (v) => ({ contentType: 'application/json; charset=latin1', bytes: JSON.stringify(v) }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['valid JSON declared UTF-16', (v) => ({ contentType: 'application/json; charset=utf-16', bytes: JSON.stringify(v) }), 400, 'BODY_INVALID_JSON'],
  ['Content-Encoding: compress', (v) => ({ ...asJson(v), encoding: 'compress' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['Content-Encoding: gzip on bytes that are not gzip', (v) => ({ ...asJson(v), encoding: 'gzip' }), 400, 'BODY_INVALID_JSON'],
  ['Content-Encoding: br on bytes that are not brotli', (v) => ({ ...asJson(v), encoding: 'br' }), 400, 'BODY_INVALID_JSON'],
  ['a gzip bomb (10 MB once inflated)', (v, f) => ({ contentType: 'application/json', encoding: 'gzip', bytes: gzipSync(`${open(v)},"${f}":"${' '.repeat(10_000_000)}"}`) }), 413, 'BODY_TOO_LARGE'],
  ['a brotli bomb (10 MB once inflated)', (v, f) => ({ contentType: 'application/json', encoding: 'br', bytes: brotliCompressSync(`${open(v)},"${f}":"${' '.repeat(10_000_000)}"}`) }), 413, 'BODY_TOO_LARGE'],
  ['a body over 16 KiB', (v, f) => asJson({ ...v, [f]: 'x'.repeat(20_000) }), 413, 'BODY_TOO_LARGE'],
]

// --- oversized and ill-formed fields ----------------------------------------------------------------------

type Who = 'alice' | 'bob' | 'none'
/** label, method, path, who calls, body, expected status and code. */
type FieldRow = readonly [label: string, method: string, path: string, who: Who, body: Record<string, unknown>, status: number, code: string]
const OVERSIZED: FieldRow[] = [
  ['a key name of 101 characters', 'POST', '/api-key', 'bob', { name: 'k'.repeat(101) }, 422, 'VALIDATION_FAILED'],
  ['a key name of 101 emoji (the limit counts code points)', 'POST', '/api-key', 'bob', { name: '🔑'.repeat(101) }, 422, 'VALIDATION_FAILED'],
  ['a key name of 10 000 characters', 'POST', '/api-key', 'bob', { name: 'k'.repeat(10_000) }, 422, 'VALIDATION_FAILED'],
  ['a key name of spaces only (trimmed to nothing)', 'POST', '/api-key', 'bob', { name: '   ' }, 422, 'VALIDATION_FAILED'],
  ['a username of 51 characters', 'POST', '/users', 'alice', { username: 'u'.repeat(51), password: 'long enough password' }, 422, 'VALIDATION_FAILED'],
  ['a username with SQL in it', 'POST', '/users', 'alice', { username: "bob'--", password: 'long enough password' }, 422, 'VALIDATION_FAILED'],
  ['a username with a NUL', 'POST', '/users', 'alice', { username: 'mal\u0000lory', password: 'long enough password' }, 422, 'VALIDATION_FAILED'],
  ['a full name with a NUL (create user)', 'POST', '/users', 'alice', { username: 'mallory', password: 'long enough password', full_name: 'Mal\u0000lory' }, 422, 'VALIDATION_FAILED'],
  ['a full name of 201 characters', 'PUT', '/me', 'bob', { full_name: 'n'.repeat(201) }, 422, 'VALIDATION_FAILED'],
  ['a full name with a NUL', 'PUT', '/me', 'bob', { full_name: 'Bob\u0000' }, 422, 'VALIDATION_FAILED'],
  ['a full name with an unpaired surrogate', 'PUT', '/me', 'bob', { full_name: 'Bob\ud800' }, 422, 'VALIDATION_FAILED'],
  ['a login username of 10 000 characters', 'POST', '/login', 'none', { username: 'u'.repeat(10_000), password: 'whatever' }, 422, 'VALIDATION_FAILED'],
  ['a login email of 255 characters', 'POST', '/login', 'none', { email: `${'e'.repeat(243)}@example.com`, password: 'whatever' }, 422, 'VALIDATION_FAILED'],
  ['a login password of 129 characters', 'POST', '/login', 'none', { username: 'bob', password: 'p'.repeat(129) }, 422, 'VALIDATION_FAILED'],
  ['a login username with a NUL', 'POST', '/login', 'none', { username: 'bob\u0000', password: 'whatever' }, 422, 'VALIDATION_FAILED'],
  ['a login email with a NUL', 'POST', '/login', 'none', { email: 'bob@example.com\u0000', password: 'whatever' }, 422, 'VALIDATION_FAILED'],
  ['a login username with an unpaired surrogate', 'POST', '/login', 'none', { username: '\udc00bob', password: 'whatever' }, 422, 'VALIDATION_FAILED'],
  ['a new password of 10 000 characters', 'POST', '/change-password', 'bob', { current_password: BOB.password, new_password: 'p'.repeat(10_000) }, 422, 'VALIDATION_FAILED'],
  ['a refresh token of 513 characters', 'POST', '/refresh', 'none', { refresh_token: 'r'.repeat(513) }, 422, 'VALIDATION_FAILED'],
]

// --- key names: stored and returned exactly as sent, or refused; never a 500 ------------------------------

type NameOutcome = { storedAs: string } | 'refused'
const stored = (name: string): [string, NameOutcome] => [name, { storedAs: name }]
const KEY_NAMES: Array<readonly [label: string, name: string, outcome: NameOutcome]> = [
  ['SQL: quote, DROP TABLE, comment', ...stored("'; DROP TABLE users; --")],
  ['SQL: double quote, OR 1=1', ...stored('" OR 1=1 --')],
  ['SQL: a closed statement and a DELETE', ...stored("'); DELETE FROM api_keys WHERE ('1'='1")],
  ['SQL: a stacked pg_sleep (answered at once)', ...stored("'; SELECT pg_sleep(5); --")],
  ['placeholders and templates', ...stored('$1 $2 %s %n %x {{7*7}} ${7*7} #{7*7}')],
  ['escaped NUL spellings (not a NUL)', ...stored('\\x00 \\0 \\u0000')],
  ['emoji with a ZWJ sequence', ...stored('🔑🚀👩‍💻')],
  ['RTL override (U+202E)', ...stored('invoice\u202Egpj.exe')],
  ['stacked combining characters', ...stored('Z\u0351\u0352\u0353a\u0300\u0301lgo')],
  ['a decomposed letter (not normalised to its precomposed form)', ...stored('A\u030A')],
  ['zero-width space and a BOM inside', ...stored('a\u200Bb\uFEFFc')],
  ['line and paragraph separators, CR, LF, 0x01, DEL', ...stored('a\u2028b\u2029c\r\nd\u0001\u007f')],
  ['exactly 100 characters', ...stored('k'.repeat(100))],
  ['100 emoji (100 code points, 200 UTF-16 units)', ...stored('🔑'.repeat(100))],
  ['surrounding spaces are trimmed', '  padded  ', { storedAs: 'padded' }],
  ['a NUL inside', 'a\u0000b', 'refused'],
  ['a NUL alone', '\u0000', 'refused'],
  ['an unpaired high surrogate', 'a\ud800', 'refused'],
  ['an unpaired low surrogate', '\udc00b', 'refused'],
]

// --- key ids in paths, sent byte for byte ------------------------------------------------------------------

/** label, method, path after /api/v1/auth, expected status and code, and whether the admin API sees it. */
type IdRow = readonly [label: string, method: string, path: string, status: number, code: string, reachesAdmin: boolean]
const MALFORMED_IDS: IdRow[] = [
  ['not a UUID', 'DELETE', '/api-keys/not-a-uuid', 422, 'VALIDATION_FAILED', true],
  ['a number', 'DELETE', '/api-keys/1', 422, 'VALIDATION_FAILED', true],
  ['SQL in the id', 'DELETE', "/api-keys/'%20OR%20'1'='1", 422, 'VALIDATION_FAILED', true],
  ['a UUID in braces', 'DELETE', '/api-keys/{00000000-0000-4000-8000-000000000000}', 422, 'VALIDATION_FAILED', true],
  ['a UUID with a suffix', 'DELETE', '/api-keys/00000000-0000-4000-8000-000000000000;drop', 422, 'VALIDATION_FAILED', true],
  ['a 10 000 character id', 'DELETE', `/api-keys/${'a'.repeat(10_000)}`, 422, 'VALIDATION_FAILED', true],
  ['the nil UUID', 'DELETE', '/api-keys/00000000-0000-0000-0000-000000000000', 404, 'NOT_FOUND', true],
  ['a random UUID', 'DELETE', '/api-keys/6f1c2a0e-4b7d-4c1e-9a51-2f3b8c9d0e1f', 404, 'NOT_FOUND', true],
  ['not a UUID, on roll', 'POST', '/api-keys/not-a-uuid/roll', 422, 'VALIDATION_FAILED', true],
  ['%00 as the id', 'DELETE', '/api-keys/%00', 400, 'PATH_INVALID', false],
  ['dot segments to another endpoint', 'DELETE', '/api-keys/../users', 400, 'PATH_INVALID', false],
  ['encoded dot segments to another endpoint', 'DELETE', '/api-keys/%2e%2e%2fusers', 400, 'PATH_INVALID', false],
  ['a raw NUL in the id', 'DELETE', '/api-keys/a\u0000b', 400, 'REQUEST_MALFORMED', false],
]

// --- refresh and logout with garbage ------------------------------------------------------------------------

/** label, refresh token in the body (or `cookie:` header value), expected status and code. */
type RefreshRow = readonly [label: string, send: { body: Record<string, unknown> } | { cookie: string }, status: number, code: string]

/** label, the Authorization header lines (and others), expected status and code; none reaches the admin API. */
type LogoutRow = readonly [label: string, headers: string[], status: number, code: string]

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const withoutInstance = (problem: Record<string, unknown>) => ({ ...problem, instance: undefined })

t.test('hostile input to the admin API', async (t) => {
  const config = routeFile(routes('internal:admin'))
  const kg = await keygateOnPostgres('adv_admin', {
    KEYGATE_CONFIG: config,
    KEYGATE_DEMOS: 'false',
    KEYGATE_CONFIG_WATCH: 'false',
    KEYGATE_LOGIN_MAX_ATTEMPTS: String(LIMIT),
    KEYGATE_LOGIN_WINDOW_SEC: '60',
    // Each scenario that fails logins speaks from its own address, so the per-address limit of one does not
    // spill into another.
    KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8',
    KEYGATE_MAX_KEYS_PER_USER: '50',
    KEYGATE_REFRESH_REUSE_WINDOW_MS: '0',
  })
  // The admin API runs in-process on a port of its own: the relay goes in front of it, and the routes to it.
  const listening = kg.logs.map((l) => JSON.parse(l) as { msg: string; admin_api?: string }).find((l) => l.msg === 'keygate listening')
  const relay = await recordingRelay(listening!.admin_api!)
  t.teardown(async () => { await kg.close(); await relay.close(); await kg.db.drop() })
  writeFileSync(config, routes(relay.origin))
  t.ok(kg.reload(), 'the authenticated endpoints are reached through the recording relay')

  const secrets: string[] = [BOOTSTRAP.password, BOB.password, CAROL.password, DAVE.password]
  const keep = <T extends string>(s: T): T => { secrets.push(s); return s }
  const loginAs = async (who: { username: string; password: string }) => {
    const res = await call(kg.url, 'POST', `${API}/login`, { body: { username: who.username, password: who.password } })
    if (res.status !== 200) throw new Error(`login of ${who.username}: ${res.status}`)
    return { access: keep(res.json.access_token as string), refresh: keep(res.json.refresh_token as string), id: res.json.user.id as string }
  }
  const alice = await loginAs(BOOTSTRAP)
  for (const user of [BOB, CAROL, DAVE]) t.equal((await call(kg.url, 'POST', `${API}/users`, { token: alice.access, body: user })).status, 201, `${user.username} is created`)
  const bob = await loginAs(BOB)
  const createKey = async (token: string, name: string) => {
    const res = await call(kg.url, 'POST', `${API}/api-key`, { token, body: { name } })
    return { id: res.json.id as string, key: keep(res.json.api_key as string) }
  }
  const aliceKey = await createKey(alice.access, 'alice key')
  const bobKey = await createKey(bob.access, 'bob key')
  const tokenOf: Record<Who, string | undefined> = { alice: alice.access, bob: bob.access, none: undefined }

  /** Who can do what: active keys, users and whether each credential still works. */
  async function snapshot() {
    const keys = async (token: string) => (await call(kg.url, 'GET', `${API}/api-keys`, { token })).json
      .filter((k: { revoked_at: string | null }) => k.revoked_at === null)
      .map((k: { id: string; api_key_name: string; expires_at: string | null; scopes: string[] }) => ({ id: k.id, name: k.api_key_name, expires_at: k.expires_at, scopes: k.scopes }))
    const users = (await call(kg.url, 'GET', `${API}/users`, { token: alice.access })).json.users
      .map((u: Record<string, unknown>) => ({ id: u.id, username: u.username, email: u.email, full_name: u.full_name, is_active: u.is_active, is_superuser: u.is_superuser }))
    const whoami = async (token: string) => { const me = await call(kg.url, 'GET', `${API}/me`, { token }); return `${me.status} ${me.json?.username}` }
    return {
      aliceKeys: await keys(alice.access),
      bobKeys: await keys(bob.access),
      users,
      credentials: [await whoami(alice.access), await whoami(aliceKey.key), await whoami(bob.access), await whoami(bobKey.key)],
    }
  }
  const tables = async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await client.connect()
    try {
      const names = await client.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [kg.db.schema])
      const users = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${kg.db.schema}.users`)
      return { tables: names.rows.map((r) => r.table_name), users: users.rows[0]!.n }
    } finally {
      await client.end()
    }
  }
  const baseline = await snapshot()
  const schemaBefore = await tables()
  t.same(baseline.credentials, ['200 alice', '200 alice', '200 bob', '200 bob'])
  t.ok(schemaBefore.tables.includes('users') && schemaBefore.tables.includes('api_keys'))

  const checkOpenApi = openApiValidator()
  /** A request with exact body bytes and content type; the answer and its problems against the OpenAPI document. */
  async function send(method: string, path: string, token: string | undefined, body: Body) {
    const headers: Record<string, string> = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body.contentType) headers['content-type'] = body.contentType
    if (body.encoding) headers['content-encoding'] = body.encoding
    // Bytes, not a string: fetch would add a text/plain content type of its own.
    const bytes = body.bytes === undefined ? undefined : new Uint8Array(typeof body.bytes === 'string' ? Buffer.from(body.bytes) : body.bytes)
    const res = await fetch(kg.url + API + path, { method, headers, body: bytes })
    const text = await res.text()
    let json: Record<string, unknown> | undefined
    try { json = JSON.parse(text) } catch { json = undefined }
    const problems = checkOpenApi(method, API + path, res.status, res.headers.get('content-type') ?? '', json)
    return { status: res.status, code: json?.code as string | undefined, json, headers: res.headers, problems }
  }
  /** A request written byte for byte (paths the URL parser would tidy up). */
  async function raw(method: string, path: string, headers: string[]) {
    const before = relay.seen.length
    const lines = [`${method} ${API}${path} HTTP/1.1`, 'Host: keygate.test', ...headers, 'Content-Length: 0', 'Connection: close']
    const { response } = await rawExchange(kg.port, Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), 5000)
    return { ...statusAndCode(response), response, reachedAdmin: relay.seen.length > before }
  }
  async function unchanged(t: Test) {
    t.same(await snapshot(), baseline, 'users, keys and credentials are as they were')
  }

  await t.test('bodies of the wrong type are refused by every endpoint that takes one', async (t) => {
    const endpoints: Array<readonly [label: string, method: string, path: string, who: Who, valid: Record<string, unknown>, field: string]> = [
      ['POST /api-key', 'POST', '/api-key', 'bob', { name: 'ok' }, 'name'],
      ['POST /login', 'POST', '/login', 'none', { username: BOB.username, password: BOB.password }, 'username'],
      ['POST /change-password', 'POST', '/change-password', 'bob', { current_password: BOB.password, new_password: 'bob password 2' }, 'new_password'],
      ['POST /users', 'POST', '/users', 'alice', { username: 'mallory', email: 'mallory@example.com', password: 'mallory password' }, 'username'],
    ]
    secrets.push('bob password 2', 'mallory password')
    for (const [endpoint, method, path, who, valid, field] of endpoints) {
      for (const [label, body, status, code] of WRONG_BODIES) {
        const res = await send(method, path, tokenOf[who], body(valid, field))
        t.same({ status: res.status, code: res.code }, { status, code }, `${endpoint}, ${label}: ${status} ${code}`)
        t.same(res.problems, [], `${endpoint}, ${label}: as the OpenAPI document says`)
      }
    }
    t.notOk('polluted' in Object.prototype, 'no prototype was polluted')
    await unchanged(t)
  })

  await t.test('oversized and ill-formed fields are refused with the field named', async (t) => {
    for (const [label, method, path, who, body, status, code] of OVERSIZED) {
      const res = await call(kg.url, method, API + path, { token: tokenOf[who], body })
      t.same({ status: res.status, code: res.json.code }, { status, code }, `${label}: ${status} ${code}`)
      t.ok(res.json.errors?.some((e: { loc: string[] }) => e.loc[0] === 'body'), `${label}: the body is named`)
    }
    await unchanged(t)
  })

  await t.test('key names with SQL or unusual Unicode are stored and returned exactly, or refused; never a 500', async (t) => {
    const listOf = async () => (await call(kg.url, 'GET', `${API}/api-keys`, { token: bob.access })).json as Array<{ id: string; api_key_name: string }>
    for (const [label, name, outcome] of KEY_NAMES) {
      const before = (await listOf()).length
      const started = performance.now()
      const res = await call(kg.url, 'POST', `${API}/api-key`, { token: bob.access, body: { name } })
      t.ok(performance.now() - started < 2000, `${label}: answered at once`)
      const after = await listOf()
      if (outcome === 'refused') {
        t.same({ status: res.status, code: res.json.code }, { status: 422, code: 'VALIDATION_FAILED' }, `${label}: refused`)
        t.ok(res.json.errors?.some((e: { loc: string[] }) => e.loc.join('.') === 'body.name'), `${label}: the name is named`)
        t.equal(after.length, before, `${label}: no key was created`)
        continue
      }
      keep(res.json.api_key)
      t.equal(res.status, 200, `${label}: created`)
      t.equal(res.json.api_key_name, outcome.storedAs, `${label}: returned as stored`)
      t.equal(after.find((k) => k.id === res.json.id)?.api_key_name, outcome.storedAs, `${label}: listed as stored`)
      t.equal((await call(kg.url, 'DELETE', `${API}/api-keys/${res.json.id}`, { token: bob.access })).status, 200, `${label}: revoked again`)
    }
    t.same(await tables(), schemaBefore, 'every table is still there, with every user')
    await unchanged(t)
  })

  await t.test('another user\'s key id is not found, and that key keeps working', async (t) => {
    const attempts: Array<readonly [label: string, method: string, path: string, token: string]> = [
      ['revoke by id with a JWT', 'DELETE', `/api-keys/${aliceKey.id}`, bob.access],
      ['revoke by id with an API key', 'DELETE', `/api-keys/${aliceKey.id}`, bobKey.key],
      ['revoke by the id in upper case', 'DELETE', `/api-keys/${aliceKey.id.toUpperCase()}`, bob.access],
      ['roll it', 'POST', `/api-keys/${aliceKey.id}/roll`, bob.access],
    ]
    for (const [label, method, path, token] of attempts) {
      const res = await call(kg.url, method, API + path, { token, body: method === 'POST' ? {} : undefined })
      t.same({ status: res.status, code: res.json.code }, { status: 404, code: 'NOT_FOUND' }, `${label}: 404 NOT_FOUND`)
    }
    const me = await call(kg.url, 'GET', `${API}/me`, { token: aliceKey.key })
    t.same([me.status, me.json.username], [200, 'alice'], 'alice\'s key still works')
    await unchanged(t)
  })

  await t.test('malformed key ids are refused by the admin API or, when the path is hostile, by the gateway', async (t) => {
    for (const [label, method, path, status, code, reachesAdmin] of MALFORMED_IDS) {
      const res = await raw(method, path, [`Authorization: Bearer ${bob.access}`])
      t.same({ status: res.status, code: res.code }, { status, code }, `${label}: ${status} ${code}`)
      t.equal(res.reachedAdmin, reachesAdmin, `${label}: ${reachesAdmin ? 'answered by the admin API' : 'never reaches the admin API'}`)
    }
    await unchanged(t)
  })

  await t.test(`login brute force is stopped after ${LIMIT} failures, per username and per address`, async (t) => {
    const attempt = (address: string, body: Record<string, unknown>) => call(kg.url, 'POST', `${API}/login`, { body, headers: { 'x-forwarded-for': address } })
    for (let i = 0; i < LIMIT; i++) {
      const res = await attempt('198.51.100.1', { username: CAROL.username, password: `guess ${i}` })
      t.same([res.status, res.json.code], [401, 'LOGIN_FAILED'], `guess ${i + 1} for carol is a plain failure`)
    }
    const blocked = await attempt('198.51.100.1', CAROL)
    t.same([blocked.status, blocked.json.code], [429, 'RATE_LIMITED'], 'then even the right password is refused')
    const retry = Number(blocked.headers.get('retry-after'))
    t.ok(Number.isInteger(retry) && retry > 0 && retry <= 60, `with Retry-After within the window (${retry} s)`)
    t.notOk('access_token' in blocked.json || blocked.headers.get('set-cookie'), 'and no token')
    const elsewhere = await attempt('198.51.100.2', CAROL)
    t.same([elsewhere.status, elsewhere.json.code], [429, 'RATE_LIMITED'], 'the username is limited from any address')
    const upper = await attempt('198.51.100.3', { username: 'CAROL', password: CAROL.password })
    t.same([upper.status, upper.json.code], [429, 'RATE_LIMITED'], 'and in any letter case')

    for (let i = 0; i < LIMIT; i++) {
      const res = await attempt('198.51.100.4', { username: `nobody-${i}`, password: 'guess' })
      t.same([res.status, res.json.code], [401, 'LOGIN_FAILED'], `guess ${i + 1} from one address, each for another username`)
    }
    const fromThere = await attempt('198.51.100.4', BOOTSTRAP)
    t.same([fromThere.status, fromThere.json.code], [429, 'RATE_LIMITED'], 'then the address is limited, whoever it names')
    t.same(withoutInstance(fromThere.json), withoutInstance(blocked.json), 'a limited known user and a limited address answer alike')

    const carol = (await call(kg.url, 'GET', `${API}/users`, { token: alice.access })).json.users.find((u: { username: string }) => u.username === 'carol')
    t.equal(carol.last_login_at, null, 'carol never logged in')
    const control = await attempt('198.51.100.5', BOOTSTRAP)
    t.equal(control.status, 200, 'from another address, another user still logs in')
    keep(control.json.access_token)
    keep(control.json.refresh_token)
    await unchanged(t)
  })

  await t.test('an unknown user and a wrong password answer the same, in a similar time', async (t) => {
    // As in test/integration/login-limits.test.ts, with fewer samples and a looser bound: medians within 3×.
    const attempt = async (i: number, body: Record<string, unknown>) => {
      const started = performance.now()
      const res = await call(kg.url, 'POST', `${API}/login`, { body, headers: { 'x-forwarded-for': `203.0.113.${i}` } })
      return { ms: performance.now() - started, status: res.status, body: withoutInstance(res.json), challenge: res.headers.get('www-authenticate') }
    }
    const wrong: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < LIMIT; i++) {
      const w = await attempt(2 * i, { username: DAVE.username, password: `not it ${i}` })
      const u = await attempt(2 * i + 1, { username: `nobody-else-${i}`, password: `not it ${i}` })
      t.same({ ...u, ms: 0 }, { ...w, ms: 0 }, `sample ${i + 1}: same status, code, body and challenge`)
      t.equal(w.status, 401)
      wrong.push(w.ms)
      unknown.push(u.ms)
    }
    // Bob's email: Dave's is locked out by now (the samples above), and failures by email count against its user.
    const byEmail = await attempt(100, { email: BOB.email, password: 'not it' })
    const unknownEmail = await attempt(101, { email: 'nobody@example.com', password: 'not it' })
    t.same({ ...unknownEmail, ms: 0 }, { ...byEmail, ms: 0 }, 'by email as well')
    const ratio = median(unknown) / median(wrong)
    t.ok(ratio > 1 / 3 && ratio < 3, `median unknown ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`)
    await unchanged(t)
  })

  await t.test('garbage and spent refresh tokens are refused and spend nothing', async (t) => {
    const session = await loginAs(BOB)
    const rows: RefreshRow[] = [
      ['garbage', { body: { refresh_token: 'garbage' } }, 401, 'REFRESH_INVALID'],
      ['well-formed but unknown', { body: { refresh_token: `rt_${'A'.repeat(43)}` } }, 401, 'REFRESH_INVALID'],
      ['the session\'s access token', { body: { refresh_token: session.access } }, 401, 'REFRESH_INVALID'],
      ['an API key', { body: { refresh_token: bobKey.key } }, 401, 'REFRESH_INVALID'],
      ['SQL', { body: { refresh_token: "' OR 1=1 --" } }, 401, 'REFRESH_INVALID'],
      ['a NUL inside', { body: { refresh_token: `${session.refresh.slice(0, 10)}\u0000${session.refresh.slice(10)}` } }, 401, 'REFRESH_INVALID'],
      ['the token with one character changed', { body: { refresh_token: session.refresh.slice(0, -1) + (session.refresh.endsWith('A') ? 'B' : 'A') } }, 401, 'REFRESH_INVALID'],
      ['no token at all', { body: {} }, 401, 'REFRESH_INVALID'],
      ['an empty string', { body: { refresh_token: '' } }, 422, 'VALIDATION_FAILED'],
      ['a number', { body: { refresh_token: 42 } }, 422, 'VALIDATION_FAILED'],
      ['an array', { body: { refresh_token: [session.refresh] } }, 422, 'VALIDATION_FAILED'],
      ['a garbage cookie', { cookie: 'refresh_token=garbage' }, 401, 'REFRESH_INVALID'],
      ['a cookie of equals signs', { cookie: 'refresh_token==a=b=' }, 401, 'REFRESH_INVALID'],
      ['a garbage cookie before the real one (the first counts)', { cookie: `refresh_token=garbage; refresh_token=${session.refresh}` }, 401, 'REFRESH_INVALID'],
    ]
    for (const [label, how, status, code] of rows) {
      const res = 'body' in how
        ? await call(kg.url, 'POST', `${API}/refresh`, { body: how.body })
        : await call(kg.url, 'POST', `${API}/refresh`, { headers: { cookie: how.cookie } })
      t.same({ status: res.status, code: res.json.code }, { status, code }, `${label}: ${status} ${code}`)
    }
    const rotated = await call(kg.url, 'POST', `${API}/refresh`, { body: { refresh_token: session.refresh } })
    t.equal(rotated.status, 200, 'the real refresh token was not spent by any of them')
    const next = { access: keep(rotated.json.access_token as string), refresh: keep(rotated.json.refresh_token as string) }
    const reused = await call(kg.url, 'POST', `${API}/refresh`, { body: { refresh_token: session.refresh } })
    t.same({ status: reused.status, code: reused.json.code }, { status: 401, code: 'REFRESH_INVALID' }, 'a spent token presented again is refused')
    const me = await call(kg.url, 'GET', `${API}/me`, { token: next.access })
    t.same({ status: me.status, code: me.json.code }, { status: 401, code: 'TOKEN_REVOKED' }, 'and ends its session: the newest access token dies')
    const newest = await call(kg.url, 'POST', `${API}/refresh`, { body: { refresh_token: next.refresh } })
    t.same({ status: newest.status, code: newest.json.code }, { status: 401, code: 'REFRESH_INVALID' }, 'and the newest refresh token')
    await unchanged(t)
  })

  await t.test('logout with a garbage credential is refused by the gateway and never reaches the admin API', async (t) => {
    const ended = await loginAs(BOB)
    t.equal((await call(kg.url, 'POST', `${API}/logout`, { token: ended.access })).status, 200, 'a session is logged out')
    const broken = apiKeyFormat().generate().key
    const rows: LogoutRow[] = [
      ['Bearer garbage', ['Authorization: Bearer garbage'], 401, 'TOKEN_INVALID'],
      ['a tampered access token', [`Authorization: Bearer ${bob.access.slice(0, -3)}xyz`], 401, 'TOKEN_INVALID'],
      ['a refresh token as the bearer', [`Authorization: Bearer ${bob.refresh}`], 401, 'TOKEN_INVALID'],
      ['the access token of a logged-out session', [`Authorization: Bearer ${ended.access}`], 401, 'TOKEN_REVOKED'],
      ['an unknown API key', [`Authorization: Bearer ${broken}`], 401, 'KEY_UNKNOWN'],
      ['an API key with a broken checksum', [`Authorization: Bearer ${broken.slice(0, -1)}${broken.endsWith('A') ? 'B' : 'A'}`], 401, 'KEY_MALFORMED'],
      ['Basic credentials', ['Authorization: Basic Ym9iOmJvYiBwYXNzd29yZCAx'], 400, 'AUTH_HEADER_INVALID'],
      ['Bearer and nothing', ['Authorization: Bearer '], 400, 'AUTH_HEADER_INVALID'],
      ['two Authorization headers', [`Authorization: Bearer ${bob.access}`, 'Authorization: Bearer garbage'], 400, 'AUTH_HEADER_INVALID'],
      ['a credential of 10 000 characters', [`Authorization: Bearer ${'a'.repeat(10_000)}`], 400, 'AUTH_HEADER_INVALID'],
      ['no credential and a forged identity header', ['X-Keygate-Identity: eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.'], 401, 'AUTH_REQUIRED'],
    ]
    for (const [label, headers, status, code] of rows) {
      const res = await raw('POST', '/logout', headers)
      t.same({ status: res.status, code: res.code }, { status, code }, `${label}: ${status} ${code}`)
      t.notOk(res.reachedAdmin, `${label}: never reaches the admin API`)
    }
    await unchanged(t)
  })

  await t.test('a forged identity header never speaks for the caller', async (t) => {
    const before = relay.seen.length
    const res = await raw('GET', '/me', [`Authorization: Bearer ${bobKey.key}`, 'X-Keygate-Identity: forged', 'x_keygate_identity: forged', 'X-Keygate-Client-Address: 10.9.9.9', 'X-User-Id: alice'])
    t.equal(res.status, 200)
    t.match(res.response, /"username":"bob"/, 'the admin API answers for the key\'s owner')
    const got = relay.seen.slice(before)
    t.equal(got.length, 1)
    t.not(got[0]!.headers['x-keygate-identity'], 'forged', 'the gateway\'s own identity arrives')
    t.not(got[0]!.headers['x-keygate-client-address'], '10.9.9.9', 'the client address is the gateway\'s view')
    t.notOk('x-user-id' in got[0]!.headers)
    await unchanged(t)
  })

  await t.test('an API key cannot do what needs a login token', async (t) => {
    const rows: Array<readonly [label: string, method: string, path: string, body?: Record<string, unknown>]> = [
      ['change the password', 'POST', '/change-password', { current_password: BOB.password, new_password: 'bob password 3' }],
      ['deactivate the account', 'DELETE', '/account'],
    ]
    secrets.push('bob password 3')
    for (const [label, method, path, body] of rows) {
      const res = await call(kg.url, method, API + path, { token: bobKey.key, body })
      t.same({ status: res.status, code: res.json.code }, { status: 403, code: 'JWT_REQUIRED' }, `${label}: 403 JWT_REQUIRED`)
    }
    await unchanged(t)
  })

  await t.test('a user who is not a superuser cannot do what needs one', async (t) => {
    const rows: Array<readonly [label: string, method: string, path: string, token: string, body: Record<string, unknown> | undefined, status: number, code: string]> = [
      ['list users', 'GET', '/users', bob.access, undefined, 403, 'NOT_SUPERUSER'],
      ['list users with an API key', 'GET', '/users', bobKey.key, undefined, 403, 'NOT_SUPERUSER'],
      ['create a superuser', 'POST', '/users', bob.access, { username: 'mallory', email: 'mallory@example.com', password: 'mallory password', is_superuser: true }, 403, 'NOT_SUPERUSER'],
      ['deactivate the superuser', 'PATCH', `/users/${alice.id}`, bob.access, { is_active: false }, 403, 'NOT_SUPERUSER'],
      ['promote oneself', 'PATCH', `/users/${bob.id}`, bob.access, { is_superuser: true }, 403, 'NOT_SUPERUSER'],
      ['promote oneself with an API key', 'PATCH', `/users/${bob.id}`, bobKey.key, { is_superuser: true }, 403, 'NOT_SUPERUSER'],
      ['read another user\'s audit trail', 'GET', `/audit?user_id=${alice.id}`, bob.access, undefined, 403, 'NOT_SUPERUSER'],
      ['promote oneself through PUT /me', 'PUT', '/me', bob.access, { is_superuser: true }, 422, 'VALIDATION_FAILED'],
    ]
    for (const [label, method, path, token, body, status, code] of rows) {
      const res = await call(kg.url, method, API + path, { token, body })
      t.same({ status: res.status, code: res.json.code }, { status, code }, `${label}: ${status} ${code}`)
    }
    await unchanged(t)
  })

  await t.test('afterwards every table is there and no secret was logged', async (t) => {
    t.same(await tables(), schemaBefore)
    t.same(leakedSecrets(kg.logs, secrets), [], `none of ${secrets.length} secrets in ${kg.logs.length} log lines`)
    t.notOk(kg.logs.some((l) => l.includes('"level":"error"')), 'no error was logged')
  })
})
