import { createPublicKey, randomUUID } from 'node:crypto'
import { CompactSign } from 'jose'
import t from 'tap'
import { manualClock } from '../../core/clock.ts'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Hostile input: access tokens that are forged, altered, confused with other tokens or past their life. The
 * access token secret is set (KEYGATE_JWT_SECRET) so that tokens signed correctly but wrong in one claim can be
 * made: those are the meaningful cases, since a bad signature alone proves little. Each refused token must get
 * its documented status and code, and nothing may reach the upstream.
 */

const SECRET = 'adversarial-tokens-secret-0123456789-abcdefgh'
const ISSUER = 'keygate'
const AUDIENCE = 'keygate:access'
const MINUTE = 60_000

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
const encoder = new TextEncoder()

/** A JWS over `payload` (any JSON, or raw text) with `header`, signed with `key` by jose. */
async function sign(payload: unknown, header: { alg: string; [k: string]: unknown } = { alg: 'HS256', typ: 'JWT' }, key: Uint8Array = encoder.encode(SECRET)): Promise<string> {
  return new CompactSign(encoder.encode(typeof payload === 'string' ? payload : JSON.stringify(payload))).setProtectedHeader(header).sign(key)
}

/** `token` with character `index` of `part` (0 header, 1 payload, 2 signature) replaced by another base64url character. */
function alter(token: string, part: number, index: number): string {
  const parts = token.split('.')
  const s = parts[part]!
  const i = index < 0 ? s.length + index : index
  parts[part] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  return parts.join('.')
}

t.test('tokens: forged, altered, confused and stale access tokens are refused', async (t) => {
  const clock = manualClock(Date.now())
  const { echo, kg } = await echoGateway(t, 'adv_tokens', { routes: `
    - { name: echo, prefix: /echo, upstream: echo }
  `, env: { KEYGATE_JWT_SECRET: SECRET }, clock })

  /** A raw GET of /echo with `Authorization: Bearer <token>`, its status and code, and whether it was forwarded. */
  async function present(token: string) {
    echo.seen.length = 0
    const head = ['GET /echo/token HTTP/1.1', 'Host: test', `Authorization: Bearer ${token}`, 'Connection: close'].join('\r\n') + '\r\n\r\n'
    const { response } = await rawExchange(kg.port, Buffer.from(head, 'latin1'))
    return { ...statusAndCode(response), response, forwarded: echo.seen.length }
  }

  const login = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
  const jwt: string = login.access_token
  const issued = decode(jwt.split('.')[1]!)
  const alice = { sub: issued.sub as string, sid: issued.sid as string }
  t.match(issued, { iss: ISSUER, aud: AUDIENCE, type: 'access', sub: String, sid: String, jti: String, iat: Number, exp: Number }, 'the issued token has the claims the forgeries copy')
  t.same(decode(jwt.split('.')[0]!), { alg: 'HS256', typ: 'JWT' })
  t.equal((await present(jwt)).status, 200, 'the genuine token is accepted')

  // Bob logs in, then is deactivated by alice (a superuser): his session ends.
  const bobPassword = 'bob has a long password too'
  const bob = (await call(kg.url, 'POST', '/api/v1/auth/users', { token: jwt, body: { username: 'bob', email: 'bob@example.com', password: bobPassword } })).json
  const bobLogin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'bob', password: bobPassword } })).json
  const bobSid = decode(bobLogin.access_token.split('.')[1]).sid as string
  t.equal((await present(bobLogin.access_token)).status, 200, 'bob\'s token works before the deactivation (and is cached)')
  const patched = await call(kg.url, 'PATCH', `/api/v1/auth/users/${bob.id}`, { token: jwt, body: { is_active: false } })
  t.equal(patched.json.is_active, false, 'bob is deactivated')

  // A second session of alice, used once, then logged out.
  const second = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
  t.equal((await present(second.access_token)).status, 200)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/logout', { token: second.access_token })).status, 200, 'the second session logs out')

  // A genuine identity assertion, as an upstream receives it.
  echo.seen.length = 0
  await present(jwt)
  const identityHeader = echo.seen[0]!.headers['x-keygate-identity'] as string
  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  const identityJwk = jwks.keys[0] as { kid: string; x: string; kty: string; crv: string }
  const identityKey = createPublicKey({ key: identityJwk, format: 'jwk' })

  const now = () => Math.floor(clock.now() / 1000)
  const claims = (extra: Record<string, unknown> = {}) => ({ sub: alice.sub, sid: alice.sid, jti: randomUUID(), iat: now(), exp: now() + 600, type: 'access', iss: ISSUER, aud: AUDIENCE, ...extra })
  const without = (name: string) => Object.fromEntries(Object.entries(claims()).filter(([k]) => k !== name))
  const [h, p, s] = jwt.split('.') as [string, string, string]
  const noneHeader = (alg: string) => b64({ alg, typ: 'JWT' })
  // A validly signed token of about `bytes` characters, the size carried by a padding claim.
  const sized = async (bytes: number) => {
    const base = await sign(claims({ pad: '' }))
    return sign(claims({ pad: 'x'.repeat(Math.ceil(((bytes - base.length) * 3) / 4)) }))
  }

  const valid = await sign(claims())
  t.equal((await present(valid)).status, 200, 'a forged token with every claim right is accepted: the forgeries below differ in one thing')

  const TOKENS: Array<{ label: string; token: string; status: number; code: string }> = [
    // alg: none and algorithm confusion
    { label: 'alg none, no signature', token: `${noneHeader('none')}.${b64(claims())}.`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'alg none, the genuine signature kept', token: `${noneHeader('none')}.${p}.${s}`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'alg None, a made-up signature', token: `${noneHeader('None')}.${b64(claims())}.AAAA`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'alg NONE, a made-up signature', token: `${noneHeader('NONE')}.${b64(claims())}.AAAA`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 keyed with the identity public key as PEM (from the JWKS)', token: await sign(claims(), { alg: 'HS256', typ: 'JWT', kid: identityJwk.kid }, encoder.encode(identityKey.export({ type: 'spki', format: 'pem' }) as string)), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 keyed with the identity public key as DER', token: await sign(claims(), { alg: 'HS256', kid: identityJwk.kid }, new Uint8Array(identityKey.export({ type: 'spki', format: 'der' }))), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 keyed with the identity public key\'s raw bytes', token: await sign(claims(), { alg: 'HS256', kid: identityJwk.kid }, new Uint8Array(Buffer.from(identityJwk.x, 'base64url'))), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 keyed with the identity public key\'s base64url text', token: await sign(claims(), { alg: 'HS256', kid: identityJwk.kid }, encoder.encode(identityJwk.x)), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 keyed with the identity JWK as JSON', token: await sign(claims(), { alg: 'HS256', kid: identityJwk.kid }, encoder.encode(JSON.stringify(identityJwk))), status: 401, code: 'TOKEN_INVALID' },
    { label: 'alg EdDSA in the header over an HS256 signature with the right secret', token: await (async () => { const [, pp, ss] = (await sign(claims())).split('.'); return `${b64({ alg: 'EdDSA', kid: identityJwk.kid, typ: 'JWT' })}.${pp}.${ss}` })(), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS384 with the right secret (the algorithm is pinned)', token: await sign(claims(), { alg: 'HS384', typ: 'JWT' }), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS512 with the right secret (the algorithm is pinned)', token: await sign(claims(), { alg: 'HS512', typ: 'JWT' }), status: 401, code: 'TOKEN_INVALID' },
    { label: 'HS256 with a wrong secret', token: await sign(claims(), undefined, encoder.encode('another-secret-of-at-least-32-bytes!!')), status: 401, code: 'TOKEN_INVALID' },
    // correctly signed, one claim wrong
    { label: 'wrong iss', token: await sign(claims({ iss: 'evil' })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no iss', token: await sign(without('iss')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'wrong aud (the issuer itself)', token: await sign(claims({ aud: ISSUER })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'wrong aud (an upstream\'s audience)', token: await sign(claims({ aud: 'echo' })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'wrong aud (a list without ours)', token: await sign(claims({ aud: ['echo', 'admin'] })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no aud', token: await sign(without('aud')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'expired a second ago', token: await sign(claims({ iat: now() - 601, exp: now() - 1 })), status: 401, code: 'TOKEN_EXPIRED' },
    { label: 'expiring this very second', token: await sign(claims({ exp: now() })), status: 401, code: 'TOKEN_EXPIRED' },
    { label: 'expired a year ago', token: await sign(claims({ iat: now() - 366 * 86_400, exp: now() - 365 * 86_400 })), status: 401, code: 'TOKEN_EXPIRED' },
    { label: 'nbf an hour from now', token: await sign(claims({ nbf: now() + 3600 })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no exp', token: await sign(without('exp')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'exp as a string', token: await sign(claims({ exp: String(now() + 600) })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'exp null', token: await sign(claims({ exp: null })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'type refresh', token: await sign(claims({ type: 'refresh' })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'type identity', token: await sign(claims({ type: 'identity' })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no type', token: await sign(without('type')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no sub', token: await sign(without('sub')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no sid', token: await sign(without('sid')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no jti', token: await sign(without('jti')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'no iat', token: await sign(without('iat')), status: 401, code: 'TOKEN_INVALID' },
    { label: 'sid of no session', token: await sign(claims({ sid: randomUUID() })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'sub of another user on alice\'s session', token: await sign(claims({ sub: bob.id })), status: 401, code: 'TOKEN_INVALID' },
    { label: 'payload not a JSON object', token: await sign('"just a string"'), status: 401, code: 'TOKEN_INVALID' },
    { label: 'payload not JSON', token: await sign('not json at all'), status: 401, code: 'TOKEN_INVALID' },
    // altered genuine tokens
    { label: 'payload tampered: sub of another user, signature kept', token: `${h}.${b64({ ...issued, sub: bob.id })}.${s}`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'payload tampered: exp a year later, signature kept', token: `${h}.${b64({ ...issued, exp: (issued.exp as number) + 365 * 86_400 })}.${s}`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'payload tampered: one character', token: alter(jwt, 1, 10), status: 401, code: 'TOKEN_INVALID' },
    { label: 'header tampered: one character', token: alter(jwt, 0, 5), status: 401, code: 'TOKEN_INVALID' },
    { label: 'signature tampered: one character', token: alter(jwt, 2, 20), status: 401, code: 'TOKEN_INVALID' },
    { label: 'signature truncated', token: jwt.slice(0, -4), status: 401, code: 'TOKEN_INVALID' },
    { label: 'signature removed', token: `${h}.${p}.`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'signature of another genuine token', token: `${h}.${p}.${second.access_token.split('.')[2]}`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'expired and badly signed (the signature is checked first)', token: alter(await sign(claims({ exp: now() - 10 })), 2, 20), status: 401, code: 'TOKEN_INVALID' },
    { label: 'base64 padding on the header (not token68)', token: `${h}==.${p}.${s}`, status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'base64 padding on the signature', token: `${jwt}=`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'four parts', token: `${jwt}.${s}`, status: 401, code: 'TOKEN_INVALID' },
    { label: 'five parts (JWE shape)', token: `${h}.${p}.${s}.${s}.${s}`, status: 401, code: 'TOKEN_INVALID' },
    // other tokens in place of an access token
    { label: 'the signed identity header value', token: identityHeader, status: 401, code: 'TOKEN_INVALID' },
    { label: 'a refresh token', token: login.refresh_token, status: 401, code: 'TOKEN_INVALID' },
    { label: 'another user\'s refresh token', token: bobLogin.refresh_token, status: 401, code: 'TOKEN_INVALID' },
    // sessions that ended
    { label: 'an access token of a logged-out session', token: second.access_token, status: 401, code: 'TOKEN_REVOKED' },
    { label: 'an access token of a user deactivated since', token: bobLogin.access_token, status: 401, code: 'TOKEN_REVOKED' },
    { label: 'a fresh, correctly signed token on the deactivated user\'s session', token: await sign(claims({ sub: bob.id, sid: bobSid })), status: 401, code: 'TOKEN_REVOKED' },
    // size
    { label: 'a 10 kB token (correctly signed)', token: await sized(10_240), status: 400, code: 'AUTH_HEADER_INVALID' },
    { label: 'a 1 MB token (correctly signed)', token: await sized(1024 * 1024), status: 431, code: 'HEADERS_TOO_LARGE' },
  ]

  await t.test('each refused token gets its status and code, and nothing is forwarded', async (t) => {
    for (const { label, token, status, code } of TOKENS) {
      const res = await present(token)
      t.equal(res.status, status, `${label}: ${status}`)
      // The 431 comes from the HTTP layer: its body may or may not carry a code.
      if (status !== 431 || res.code !== undefined) t.equal(res.code, code, `${label}: ${code}`)
      if (status !== 431) t.match(res.response, /\r\ncontent-type: application\/problem\+json\r\n/i, `${label}: a problem document`)
      if (status === 401) t.match(res.response, /\r\nwww-authenticate: Bearer error="invalid_token"\r\n/i, `${label}: an invalid_token challenge`)
      if (status === 400) t.match(res.response, /\r\nwww-authenticate: Bearer error="invalid_request"\r\n/i, `${label}: an invalid_request challenge`)
      t.equal(res.forwarded, 0, `${label}: nothing forwarded`)
    }
  })

  const ACCEPTED: Array<{ label: string; token: string }> = [
    { label: 'the genuine token', token: jwt },
    { label: 'correctly signed, every claim right', token: valid },
    { label: 'correctly signed, ours among several audiences', token: await sign(claims({ aud: ['echo', AUDIENCE] })) },
    { label: 'correctly signed, a header kid naming the identity key (kid selects nothing)', token: await sign(claims(), { alg: 'HS256', typ: 'JWT', kid: identityJwk.kid }) },
    { label: 'correctly signed, header typ at+jwt (typ selects nothing)', token: await sign(claims(), { alg: 'HS256', typ: 'at+jwt' }) },
    { label: 'correctly signed, just under the 8192-character limit', token: await sized(8150) },
  ]

  await t.test('the controls: a correctly signed token with every claim right is accepted, whatever its header names', async (t) => {
    for (const { label, token } of ACCEPTED) {
      const res = await present(token)
      t.equal(res.status, 200, `${label}: 200`)
      t.equal(res.forwarded, 1, `${label}: forwarded`)
    }
  })

  await t.test('a genuine token is refused as expired once its 15 minutes are over, cached or not', async (t) => {
    const unused = await sign(claims())
    clock.advance(15 * MINUTE)
    for (const [label, token] of [['the genuine token, verified and cached before', jwt], ['a correctly signed token never presented before', unused]] as const) {
      const res = await present(token)
      t.same({ status: res.status, code: res.code }, { status: 401, code: 'TOKEN_EXPIRED' }, `${label}: 401 TOKEN_EXPIRED`)
      t.equal(res.forwarded, 0, `${label}: nothing forwarded`)
    }
  })

  await t.test('the cases, counted', async (t) => {
    t.comment(`refused tokens: ${TOKENS.length}; accepted controls: ${ACCEPTED.length}; expired after 15 minutes: 2`)
    t.ok(TOKENS.length >= 50)
  })

  await t.test('the log holds none of the secrets used', async (t) => {
    const secrets = [SECRET, BOOTSTRAP.password, bobPassword, jwt, login.refresh_token, second.access_token, second.refresh_token, bobLogin.access_token, bobLogin.refresh_token, valid, identityHeader,
      ...TOKENS.map((c) => c.token).filter((x) => x.length >= 20), ...ACCEPTED.map((c) => c.token)]
    t.same(leakedSecrets(kg.logs, secrets), [])
    t.ok(kg.logs.length > 0, 'the log was captured')
  })
})
