import t from 'tap'
import { createHmac } from 'node:crypto'
import jwt from 'jsonwebtoken'
import { manualClock } from '../../../core/clock.ts'
import { hashRefreshToken, tokenService } from '../../../core/tokens.ts'

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long'
const ISSUER = 'keygate'
const AUDIENCE = 'keygate-api'

function service(overrides: { secret?: string; issuer?: string; audience?: string } = {}) {
  const clock = manualClock()
  const tokens = tokenService({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, accessTtlSec: 900, refreshTtlSec: 3600, clock, ...overrides })
  return { clock, tokens }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** An HS256 token with the given claims, signed by hand with `SECRET`. */
function craft(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }, secret = SECRET): string {
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

t.test('an issued access token verifies with the claims it was issued with', async (t) => {
  const { clock, tokens } = service()
  const issued = tokens.issueAccess('user-1', 'session-1')
  t.equal(issued.expiresIn, 900)
  t.equal(issued.claims.iat, Math.floor(clock.now() / 1000))
  t.equal(issued.claims.exp, issued.claims.iat + 900)
  const verdict = tokens.verifyAccess(issued.token)
  t.same(verdict, { ok: true, claims: issued.claims })
  t.not(tokens.issueAccess('user-1', 'session-1').claims.jti, issued.claims.jti, 'every token has its own jti')
})

t.test('a token is valid until its exp and expired from then on', async (t) => {
  const { clock, tokens } = service()
  const { token } = tokens.issueAccess('user-1', 'session-1')
  clock.advance(899_000)
  t.equal(tokens.verifyAccess(token).ok, true, 'one second before exp')
  clock.advance(1_000)
  t.same(tokens.verifyAccess(token), { ok: false, code: 'TOKEN_EXPIRED' })
  clock.advance(86_400_000)
  t.same(tokens.verifyAccess(token), { ok: false, code: 'TOKEN_EXPIRED' })
})

t.test('a token signed with another secret is invalid', async (t) => {
  const { tokens } = service()
  const { tokens: other } = service({ secret: 'another-secret-that-is-at-least-32-bytes!' })
  t.same(tokens.verifyAccess(other.issueAccess('user-1', 'session-1').token), { ok: false, code: 'TOKEN_INVALID' })
})

t.test('an alg:none token is invalid', async (t) => {
  const { clock, tokens } = service()
  const iat = Math.floor(clock.now() / 1000)
  const claims = { sub: 'user-1', sid: 'session-1', jti: 'j', iat, exp: iat + 900, type: 'access', iss: ISSUER, aud: AUDIENCE }
  t.same(tokens.verifyAccess(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`), { ok: false, code: 'TOKEN_INVALID' })
  t.same(tokens.verifyAccess(craft(claims, { alg: 'HS512', typ: 'JWT' })), { ok: false, code: 'TOKEN_INVALID' }, 'only HS256 is allowed')
  t.equal(tokens.verifyAccess(craft(claims)).ok, true, 'the same claims signed with HS256 are accepted (control)')
})

t.test('a token without exp is invalid rather than immortal', async (t) => {
  const { clock, tokens } = service()
  const base = { sub: 'user-1', sid: 'session-1', jti: 'j', type: 'access' }
  const noTimestamps = jwt.sign(base, SECRET, { algorithm: 'HS256', noTimestamp: true, issuer: ISSUER, audience: AUDIENCE })
  t.same(tokens.verifyAccess(noTimestamps), { ok: false, code: 'TOKEN_INVALID' })
  const iatOnly = jwt.sign({ ...base, iat: Math.floor(clock.now() / 1000) }, SECRET, { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE })
  t.same(tokens.verifyAccess(iatOnly), { ok: false, code: 'TOKEN_INVALID' })
})

t.test('a token with type refresh or without a type is invalid as an access token', async (t) => {
  const { clock, tokens } = service()
  const iat = Math.floor(clock.now() / 1000)
  const claims = { sub: 'user-1', sid: 'session-1', jti: 'j', iat, exp: iat + 900, iss: ISSUER, aud: AUDIENCE }
  t.same(tokens.verifyAccess(craft({ ...claims, type: 'refresh' })), { ok: false, code: 'TOKEN_INVALID' })
  t.same(tokens.verifyAccess(craft(claims)), { ok: false, code: 'TOKEN_INVALID' })
})

t.test('a token missing sub, sid or jti is invalid', async (t) => {
  const { clock, tokens } = service()
  const iat = Math.floor(clock.now() / 1000)
  const claims = { sub: 'user-1', sid: 'session-1', jti: 'j', iat, exp: iat + 900, type: 'access', iss: ISSUER, aud: AUDIENCE }
  for (const missing of ['sub', 'sid', 'jti'] as const) {
    const { [missing]: _, ...rest } = claims
    t.same(tokens.verifyAccess(craft(rest)), { ok: false, code: 'TOKEN_INVALID' }, missing)
  }
})

t.test('a token for another issuer or audience is invalid', async (t) => {
  const { tokens } = service()
  const { tokens: otherIssuer } = service({ issuer: 'someone-else' })
  const { tokens: otherAudience } = service({ audience: 'another-api' })
  t.same(tokens.verifyAccess(otherIssuer.issueAccess('user-1', 'session-1').token), { ok: false, code: 'TOKEN_INVALID' })
  t.same(tokens.verifyAccess(otherAudience.issueAccess('user-1', 'session-1').token), { ok: false, code: 'TOKEN_INVALID' })
})

t.test('garbage is invalid, not a thrown error', async (t) => {
  const { tokens } = service()
  for (const value of ['', 'x', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9..', 'rt_' + 'A'.repeat(43)]) {
    t.same(tokens.verifyAccess(value), { ok: false, code: 'TOKEN_INVALID' }, JSON.stringify(value))
  }
})

t.test('a refresh token is an opaque rt_ string, never a JWT, and never verifies as an access token', async (t) => {
  const { clock, tokens } = service()
  const refresh = tokens.newRefreshToken()
  t.match(refresh.token, /^rt_[A-Za-z0-9_-]{43}$/)
  t.equal(refresh.token.split('.').length, 1, 'no JWS segments')
  t.same(tokens.verifyAccess(refresh.token), { ok: false, code: 'TOKEN_INVALID' })
  t.equal(refresh.expiresAt.getTime(), clock.now() + 3_600_000)
  t.not(tokens.newRefreshToken().token, refresh.token)
})

t.test('a refresh token hashes to the same SHA-256 hex every time', async (t) => {
  const { tokens } = service()
  const refresh = tokens.newRefreshToken()
  t.match(refresh.hash, /^[0-9a-f]{64}$/)
  t.equal(hashRefreshToken(refresh.token), refresh.hash)
  t.equal(hashRefreshToken(refresh.token), hashRefreshToken(refresh.token))
  t.not(hashRefreshToken(refresh.token + 'x'), refresh.hash)
})

t.test('a signing secret shorter than 32 bytes is refused', async (t) => {
  t.throws(() => service({ secret: 'short' }), RangeError)
})
