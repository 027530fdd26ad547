import { LRUCache } from 'lru-cache'
import type { Clock } from '../core/clock.ts'
import type { CredentialCache } from '../core/credential-cache.ts'
import { sessionCacheKey, sessionCredentialId } from '../core/credential-keys.ts'
import type { SessionRecord } from '../core/session-store.ts'
import type { AccessClaims, TokenService } from '../core/tokens.ts'
import type { AuthResult, Authenticator } from './authenticator.ts'
import { TUNABLES } from '../config/tunables.ts'

export interface JwtAuthenticatorDeps {
  tokens: TokenService
  cache: CredentialCache<SessionRecord>
  findSession(sessionId: string): Promise<SessionRecord | null>
  clock: Clock
  /** Verified tokens remembered (by the raw token), so the signature is checked once per token, not per request. */
  verifiedMax?: number
}

/**
 * A token whose signature and claims verified. `session` is the cached session record the token was last
 * accepted with, and `accepted` the acceptance built from it: reused while the cache serves that same record.
 */
interface Verified {
  readonly claims: AccessClaims
  readonly sessionKey: string
  session?: SessionRecord
  accepted?: AuthResult
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const INVALID: AuthResult = Object.freeze({ ok: false, code: 'TOKEN_INVALID' })
const EXPIRED: AuthResult = Object.freeze({ ok: false, code: 'TOKEN_EXPIRED' })
const REVOKED: AuthResult = Object.freeze({ ok: false, code: 'TOKEN_REVOKED' })
const INACTIVE: AuthResult = Object.freeze({ ok: false, code: 'USER_INACTIVE' })

/**
 * Access tokens issued at login: signature (algorithm pinned), `exp` required, issuer, audience and
 * `type: access` (a refresh token is never an access token); then the login session, through the cache:
 * logged out, user deactivated or password changed since the token was issued → rejected.
 *
 * Verifying a signature costs hundreds of microseconds with jsonwebtoken, so a token that verified is
 * remembered by the raw token (only tokens this gateway signed get in) until its `exp`; the session
 * (revocation) is still checked on every request. A token whose session the in-process cache holds is decided
 * synchronously, without a promise.
 */
export function jwtAuthenticator(deps: JwtAuthenticatorDeps): Authenticator {
  // No TTL of its own: `exp` is checked against the clock on every hit (an expired entry is dropped then), and
  // an LRU without one answers a get without reading a timer.
  const verified = new LRUCache<string, Verified>({ max: deps.verifiedMax ?? TUNABLES.caches.verifiedTokensMax })

  function decide(token: Verified, session: SessionRecord | null): AuthResult {
    const { sub, iat } = token.claims
    if (!session || session.userId !== sub) return INVALID
    // Whole seconds: `iat` has no finer grain. Tokens of the cutoff's own second die with their session, which
    // every cutoff-moving write also revokes.
    if (session.revokedAt !== null || iat < Math.floor(session.tokensValidAfter / 1000)) return REVOKED
    if (!session.userActive) return INACTIVE
    if (token.session !== session) {
      const { sid, exp } = token.claims
      token.session = session
      // validUntil: streams opened with the token close at its `exp`, as those of an expiring key do.
      token.accepted = Object.freeze({
        ok: true,
        principal: Object.freeze({ userId: sub, username: session.username, auth: 'jwt', sessionId: sid, scopes: ['*'], credentialId: sessionCredentialId(sid), revocationKey: token.sessionKey, validUntil: exp * 1000 }),
      })
    }
    return token.accepted!
  }

  return {
    name: 'jwt',
    accepts: (credential) => JWT_SHAPE.test(credential),
    authenticate(credential) {
      const now = deps.clock.now()
      let token = verified.get(credential)
      if (!token) {
        const verdict = deps.tokens.verifyAccess(credential)
        if (!verdict.ok) return verdict
        const { claims } = verdict
        token = { claims, sessionKey: sessionCacheKey(claims.sid) }
        verified.set(credential, token)
      } else if (token.claims.exp * 1000 <= now) {
        verified.delete(credential)
        return EXPIRED
      }
      const cached = deps.cache.peek(token.sessionKey)
      if (cached !== undefined) return decide(token, cached)
      const t = token
      const { sid } = t.claims
      return deps.cache.get(t.sessionKey, () => deps.findSession(sid)).then((session) => decide(t, session))
    },
  }
}
