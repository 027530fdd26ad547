import t from 'tap'
import { manualClock } from '../../../core/clock.ts'
import { credentialCache } from '../../../core/credential-cache.ts'
import type { SessionRecord } from '../../../core/session-store.ts'
import { tokenService } from '../../../core/tokens.ts'
import { jwtAuthenticator } from '../../../gateway/authenticator-jwt.ts'

const sessionKeyOf = (m: { kind: string; sessionId?: string }) => (m.kind === 'session' ? `s:${m.sessionId}` : undefined)

function setup() {
  const clock = manualClock()
  const tokens = tokenService({ secret: 'x'.repeat(32), issuer: 'keygate', audience: 'keygate', accessTtlSec: 900, refreshTtlSec: 3600, clock })
  let verifications = 0
  const counted = { ...tokens, verifyAccess: (token: string) => { verifications++; return tokens.verifyAccess(token) } }
  const sessions = new Map<string, SessionRecord>([['s1', { sessionId: 's1', userId: 'u1', username: 'alice', userActive: true, tokensValidAfter: 0, revokedAt: null }]])
  const cache = credentialCache<SessionRecord>({ max: 100, ttlMs: 60_000, negativeTtlMs: 5_000 })
  let lookups = 0
  const auth = jwtAuthenticator({ tokens: counted, cache, clock, findSession: async (sid) => { lookups++; return sessions.get(sid) ?? null } })
  const { token } = tokens.issueAccess('u1', 's1')
  return { auth, clock, cache, sessions, token, verifications: () => verifications, lookups: () => lookups }
}

t.test('a token verified once is decided synchronously on later requests, with one principal object', async (t) => {
  const { auth, token, verifications, lookups } = setup()
  t.match(await auth.authenticate(token), { ok: true, principal: { userId: 'u1', username: 'alice', auth: 'jwt', sessionId: 's1' } })
  const warm = auth.authenticate(token)
  t.notOk(warm instanceof Promise, 'no promise when the session is cached')
  t.equal((auth.authenticate(token) as { principal: unknown }).principal, (warm as { principal: unknown }).principal)
  t.equal(verifications(), 1, 'the signature was verified once')
  t.equal(lookups(), 1)
})

t.test('a session revoked while its token is remembered is refused on the very next request', async (t) => {
  const { auth, token, cache, sessions } = setup()
  t.ok((await auth.authenticate(token)).ok)
  sessions.set('s1', { ...sessions.get('s1')!, revokedAt: 1 })
  cache.invalidate({ kind: 'session', sessionId: 's1' }, sessionKeyOf)
  t.same(await auth.authenticate(token), { ok: false, code: 'TOKEN_REVOKED' })
})

t.test('a remembered token is refused once its exp passes, and a user deactivated is refused from the cached session', async (t) => {
  const { auth, token, clock, cache, sessions } = setup()
  t.ok((await auth.authenticate(token)).ok)
  sessions.set('s1', { ...sessions.get('s1')!, userActive: false })
  cache.invalidate({ kind: 'session', sessionId: 's1' }, sessionKeyOf)
  t.same(await auth.authenticate(token), { ok: false, code: 'USER_INACTIVE' })
  clock.advance(900_000)
  t.same(await auth.authenticate(token), { ok: false, code: 'TOKEN_EXPIRED' })
})

t.test('a token that differs from a remembered one by its signature is verified, and refused', async (t) => {
  const { auth, token, verifications } = setup()
  t.ok((await auth.authenticate(token)).ok)
  const forged = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1)
  t.same(await auth.authenticate(forged), { ok: false, code: 'TOKEN_INVALID' })
  t.equal(verifications(), 2)
})
