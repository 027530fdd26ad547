import t from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { manualClock } from '../../core/clock.ts'
import { verifyIdentity } from '@keygate/verify'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Hostile input: API keys that are invented, mistyped, altered, cut, extended, revoked, expired or of another
 * environment, and Authorization headers that are not exactly one `Bearer <key>`. Requests are written on raw
 * sockets (latin1, byte for byte) so whitespace and repeated headers arrive as listed. Each refused request
 * must get its documented status and code, with nothing forwarded.
 */

const DAY = 86_400_000

/** `key` with the character at `index` replaced by another base62 character (a digit for a letter and back). */
function changeOne(key: string, index: number): string {
  const i = index < 0 ? key.length + index : index
  const c = key[i]!
  const other = /[0-9]/.test(c) ? 'x' : '7'
  return key.slice(0, i) + other + key.slice(i + 1)
}

/** `key` with the case of its first letter after the prefix flipped. */
function flipCase(key: string, prefix: string): string {
  const i = [...key].findIndex((c, j) => j >= prefix.length && /[A-Za-z]/.test(c))
  const c = key[i]!
  return key.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + key.slice(i + 1)
}

t.test('API keys: altered, unknown, revoked, expired and misplaced keys are refused', async (t) => {
  const clock = manualClock(Date.now())
  const { echo, kg } = await echoGateway(t, 'adv_api_keys', { routes: `
    - { name: echo, prefix: /echo, upstream: echo }
  `, env: { KEYGATE_MAX_KEYS_PER_USER: '10' }, clock })
  const format = apiKeyFormat()
  const P = format.prefix

  /** A raw GET of /echo with exactly these header lines; its status, code and whether it was forwarded. */
  async function send(lines: string[]) {
    echo.seen.length = 0
    const head = ['GET /echo/key HTTP/1.1', 'Host: test', ...lines, 'Connection: close'].join('\r\n') + '\r\n\r\n'
    const { response } = await rawExchange(kg.port, Buffer.from(head, 'latin1'))
    return { ...statusAndCode(response), response, forwarded: echo.seen.length }
  }
  const bearer = (credential: string) => [`Authorization: Bearer ${credential}`]

  const login = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
  const jwt: string = login.access_token
  const newKey = async (body: Record<string, unknown>, token = jwt) => {
    const res = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token, body })
    t.equal(res.status, 200, `key "${body.name}" created`)
    return res.json as { id: string; api_key: string; expires_at: string | null }
  }
  const main = await newKey({ name: 'main' })
  const key = main.api_key
  t.equal((await send(bearer(key))).status, 200, 'the key works')

  const revoked = await newKey({ name: 'revoked' })
  t.equal((await send(bearer(revoked.api_key))).status, 200, 'the key to revoke works first (and is cached)')
  t.equal((await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${revoked.id}`, { token: jwt })).status, 200, 'and is revoked')

  const rolled = await newKey({ name: 'rolled' })
  t.equal((await call(kg.url, 'POST', `/api/v1/auth/api-keys/${rolled.id}/roll`, { token: jwt, body: { grace_period_seconds: 0 } })).status, 200, 'a key rolled with no grace period')

  const inADay = await newKey({ name: 'in a day', expires_in_days: 1 })
  const inAnHour = await newKey({ name: 'in an hour', expires_at: new Date(clock.now() + 3_600_000).toISOString() })
  t.equal((await send(bearer(inADay.api_key))).status, 200, 'a key with an expiry works before it (and is cached)')

  // Bob, with a key of his own, is deactivated: his keys are revoked.
  const bobPassword = 'bob has a long password too'
  const bob = (await call(kg.url, 'POST', '/api/v1/auth/users', { token: jwt, body: { username: 'bob', email: 'bob@example.com', password: bobPassword } })).json
  const bobLogin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'bob', password: bobPassword } })).json
  const bobKey = await newKey({ name: 'bob' }, bobLogin.access_token)
  t.equal((await send(bearer(bobKey.api_key))).status, 200, 'bob\'s key works before the deactivation')
  t.equal((await call(kg.url, 'PATCH', `/api/v1/auth/users/${bob.id}`, { token: jwt, body: { is_active: false } })).json.is_active, false, 'bob is deactivated')

  // A day and a second later: the two keys with an expiry are past it (alice's login token too; the key still works).
  clock.advance(DAY + 1000)

  const unknown = format.generate().key
  const otherEnvironment = apiKeyFormat('sk_test_').generate().key
  const basic = (text: string) => [`Authorization: Basic ${Buffer.from(text).toString('base64')}`]
  const R = { status: 401 } as const

  const REFUSED: Array<{ label: string; lines: string[]; status: number; code: string }> = [
    // the checksum and the store
    { label: 'wrong checksum (its last character changed)', lines: bearer(changeOne(key, -1)), ...R, code: 'KEY_MALFORMED' },
    { label: 'wrong checksum (its first character changed)', lines: bearer(changeOne(key, -6)), ...R, code: 'KEY_MALFORMED' },
    { label: 'right checksum, but no such key', lines: bearer(unknown), ...R, code: 'KEY_UNKNOWN' },
    { label: 'revoked', lines: bearer(revoked.api_key), ...R, code: 'KEY_REVOKED' },
    { label: 'rolled with no grace period', lines: bearer(rolled.api_key), ...R, code: 'KEY_REVOKED' },
    { label: 'of a user deactivated since', lines: bearer(bobKey.api_key), ...R, code: 'KEY_REVOKED' },
    { label: 'expired (expires_in_days, cached before)', lines: bearer(inADay.api_key), ...R, code: 'KEY_EXPIRED' },
    { label: 'expired (expires_at, never used)', lines: bearer(inAnHour.api_key), ...R, code: 'KEY_EXPIRED' },
    // other environments and prefixes
    { label: 'another environment (sk_test_, valid checksum)', lines: bearer(otherEnvironment), ...R, code: 'KEY_MALFORMED' },
    { label: 'the live key with its prefix changed to sk_test_', lines: bearer('sk_test_' + key.slice(P.length)), ...R, code: 'KEY_MALFORMED' },
    { label: 'the prefix in upper case (not an sk_ credential, not a JWT)', lines: bearer(P.toUpperCase() + key.slice(P.length)), ...R, code: 'TOKEN_INVALID' },
    { label: 'the prefix without its last underscore', lines: bearer(P.slice(0, -1) + key.slice(P.length)), ...R, code: 'KEY_MALFORMED' },
    // one character changed
    { label: 'one character changed (first after the prefix)', lines: bearer(changeOne(key, P.length)), ...R, code: 'KEY_MALFORMED' },
    { label: 'one character changed (in the middle)', lines: bearer(changeOne(key, 30)), ...R, code: 'KEY_MALFORMED' },
    { label: 'one character changed (in the prefix)', lines: bearer(key.replace('sk_live_', 'sk_livf_')), ...R, code: 'KEY_MALFORMED' },
    { label: 'one letter in the other case', lines: bearer(flipCase(key, P)), ...R, code: 'KEY_MALFORMED' },
    // truncated
    { label: 'truncated by one character', lines: bearer(key.slice(0, -1)), ...R, code: 'KEY_MALFORMED' },
    { label: 'truncated to half', lines: bearer(key.slice(0, Math.floor(key.length / 2))), ...R, code: 'KEY_MALFORMED' },
    { label: 'without its checksum', lines: bearer(key.slice(0, -6)), ...R, code: 'KEY_MALFORMED' },
    { label: 'the prefix alone', lines: bearer(P), ...R, code: 'KEY_MALFORMED' },
    { label: 'sk_ alone', lines: bearer('sk_'), ...R, code: 'KEY_MALFORMED' },
    // extended
    { label: 'one base62 character appended', lines: bearer(key + 'A'), ...R, code: 'KEY_MALFORMED' },
    { label: 'one character prepended (no longer an sk_ credential)', lines: bearer('A' + key), ...R, code: 'TOKEN_INVALID' },
    { label: 'base64 padding appended', lines: bearer(key + '=='), ...R, code: 'KEY_MALFORMED' },
    { label: 'a dot and more appended', lines: bearer(key + '.x'), ...R, code: 'KEY_MALFORMED' },
    { label: 'the key twice, joined', lines: bearer(key + key), ...R, code: 'KEY_MALFORMED' },
    { label: 'a comma and another key appended', lines: bearer(`${key},${unknown}`), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a space and another key appended', lines: bearer(`${key} ${unknown}`), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a DEL byte (0x7f) appended', lines: bearer(key + '\x7f'), status: 400, code: 'REQUEST_MALFORMED' },
    // whitespace that is not optional whitespace
    { label: 'a tab between the scheme and the key', lines: [`Authorization: Bearer\t${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'no space between the scheme and the key', lines: [`Authorization: Bearer${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a no-break space (0xA0) after the key', lines: [`Authorization: Bearer ${key}\xa0`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a no-break space (0xA0) before the scheme', lines: [`Authorization: \xa0Bearer ${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a vertical tab after the key', lines: [`Authorization: Bearer ${key}\x0b`], status: 400, code: 'REQUEST_MALFORMED' },
    { label: 'a space before the colon', lines: [`Authorization : Bearer ${key}`], status: 400, code: 'REQUEST_MALFORMED' },
    { label: 'the key folded onto a continuation line (obs-fold)', lines: ['Authorization: Bearer', ` ${key}`], status: 400, code: 'REQUEST_MALFORMED' },
    // two Authorization headers
    { label: 'two Authorization headers, the same key', lines: [...bearer(key), ...bearer(key)], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'two Authorization headers in different case', lines: [`Authorization: Bearer ${key}`, `AUTHORIZATION: Bearer ${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'two Authorization headers, a good key and an unknown one', lines: [...bearer(key), ...bearer(unknown)], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'two Authorization headers, a revoked key first', lines: [...bearer(revoked.api_key), ...bearer(key)], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'two Authorization headers, the second empty', lines: [...bearer(key), 'Authorization:'], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'two Authorization headers, Bearer and Basic', lines: [...bearer(key), ...basic(`alice:${BOOTSTRAP.password}`)], status: 400, code: 'AUTH_HEADER_INVALID' },
    // other schemes
    { label: 'Basic scheme with a username and password', lines: basic(`alice:${BOOTSTRAP.password}`), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'Basic scheme with the key as the username', lines: basic(`${key}:`), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'Basic scheme with the key as the password', lines: basic(`:${key}`), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'Token scheme', lines: [`Authorization: Token ${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'ApiKey scheme', lines: [`Authorization: ApiKey ${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'no scheme', lines: [`Authorization: ${key}`], status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'Bearer with nothing after it', lines: ['Authorization: Bearer '], status: 400, code: 'AUTH_HEADER_INVALID' },
    // the key anywhere but in Authorization
    { label: 'the key in X-API-Key', lines: [`X-API-Key: ${key}`], ...R, code: 'AUTH_REQUIRED' },
    { label: 'the key in an underscore Authorization header', lines: [`Authorization_: Bearer ${key}`], ...R, code: 'AUTH_REQUIRED' },
    { label: 'the key in Proxy-Authorization', lines: [`Proxy-Authorization: Bearer ${key}`], ...R, code: 'AUTH_REQUIRED' },
    { label: 'the key in a cookie', lines: [`Cookie: api_key=${key}`], ...R, code: 'AUTH_REQUIRED' },
  ]

  await t.test('each refused key gets its status and code, and nothing is forwarded', async (t) => {
    for (const { label, lines, status, code } of REFUSED) {
      const res = await send(lines)
      t.equal(res.status, status, `${label}: ${status}`)
      // REQUEST_MALFORMED comes from the HTTP layer: a bare 400 without a body is accepted there.
      if (code !== 'REQUEST_MALFORMED' || res.code !== undefined) t.equal(res.code, code, `${label}: ${code}`)
      if (code === 'AUTH_REQUIRED') t.match(res.response, /\r\nwww-authenticate: Bearer\r\n/i, `${label}: a bare Bearer challenge`)
      else if (status === 401) t.match(res.response, /\r\nwww-authenticate: Bearer error="invalid_token"\r\n/i, `${label}: an invalid_token challenge`)
      else if (code === 'AUTH_HEADER_INVALID') t.match(res.response, /\r\nwww-authenticate: Bearer error="invalid_request"\r\n/i, `${label}: an invalid_request challenge`)
      t.equal(res.forwarded, 0, `${label}: nothing forwarded`)
    }
  })

  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  const ACCEPTED: Array<{ label: string; lines: string[] }> = [
    { label: 'the key as issued', lines: bearer(key) },
    { label: 'lowercase bearer scheme (schemes are case-insensitive)', lines: [`Authorization: bearer ${key}`] },
    { label: 'BEARER scheme', lines: [`Authorization: BEARER ${key}`] },
    { label: 'authorization in lower case', lines: [`authorization: Bearer ${key}`] },
    { label: 'spaces around the value (optional whitespace, not part of it)', lines: [`Authorization:    Bearer ${key}    `] },
    { label: 'tabs around the value', lines: [`Authorization:\t\tBearer ${key}\t`] },
    { label: 'several spaces between the scheme and the key', lines: [`Authorization: Bearer     ${key}`] },
  ]

  await t.test('the controls: the key in any accepted spelling is forwarded as alice\'s key, never as the header', async (t) => {
    for (const { label, lines } of ACCEPTED) {
      const res = await send(lines)
      t.equal(res.status, 200, `${label}: 200`)
      const got = echo.seen[0]
      const verdict = await verifyIdentity(got?.headers['x-keygate-identity'], { keys: jwks.keys, audience: 'echo', now: clock.now })
      t.match(verdict, { ok: true, identity: { username: 'alice', auth: 'api_key', keyId: main.id } }, `${label}: forwarded with alice's identity`)
      t.notOk(got && 'authorization' in got.headers, `${label}: the key stops at the gateway`)
    }
  })

  await t.test('the cases, counted', async (t) => {
    t.comment(`refused: ${REFUSED.length}; accepted controls: ${ACCEPTED.length}`)
    t.ok(REFUSED.length >= 50)
  })

  await t.test('the log holds none of the secrets used', async (t) => {
    const presented = REFUSED.flatMap((c) => c.lines).map((l) => l.slice(l.indexOf(':') + 1).trim().replace(/^\w+ /, '')).filter((v) => v.length >= 20)
    const secrets = [BOOTSTRAP.password, bobPassword, jwt, login.refresh_token, bobLogin.access_token, bobLogin.refresh_token,
      key, revoked.api_key, rolled.api_key, inADay.api_key, inAnHour.api_key, bobKey.api_key, unknown, otherEnvironment, ...presented]
    t.same(leakedSecrets(kg.logs, secrets), [])
    t.ok(kg.logs.length > 0, 'the log was captured')
  })
})
