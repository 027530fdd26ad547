import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Clock } from '../core/clock.ts'
import type { CredentialCache } from '../core/credential-cache.ts'
import { sessionCacheKey, sessionCredentialId } from '../core/credential-keys.ts'
import type { SessionRecord } from '../core/session-store.ts'
import type { AccessClaims, TokenService } from '../core/tokens.ts'
import type { Authenticator } from './authenticator.ts'
import { TUNABLES } from '../config/tunables.ts'

export interface JwtAuthenticatorDeps {
  tokens: TokenService
  cache: CredentialCache<SessionRecord>
  findSession(sessionId: string): Promise<SessionRecord | null>
  clock: Clock
  /** Verified tokens remembered (by SHA-256), so the signature is checked once per token, not per request. */
  verifiedMax?: number
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Access tokens issued at login: signature (algorithm pinned), `exp` required, issuer, audience and
 * `type: access` (a refresh token is never an access token); then the login session, through the cache:
 * logged out, user deactivated or password changed since the token was issued → rejected.
 *
 * Verifying a signature costs hundreds of microseconds with jsonwebtoken, so a token that verified is
 * remembered by its hash until its `exp`; the session (revocation) is still checked on every request.
 */
export function jwtAuthenticator(deps: JwtAuthenticatorDeps): Authenticator {
  const verified = new LRUCache<string, AccessClaims>({ max: deps.verifiedMax ?? TUNABLES.caches.verifiedTokensMax })
  return {
    name: 'jwt',
    accepts: (credential) => JWT_SHAPE.test(credential),
    async authenticate(credential) {
      const now = deps.clock.now()
      const digest = hash('sha256', credential, 'base64')
      let claims = verified.get(digest)
      if (!claims) {
        const verdict = deps.tokens.verifyAccess(credential)
        if (!verdict.ok) return verdict
        claims = verdict.claims
        verified.set(digest, claims, { ttl: Math.max(1, claims.exp * 1000 - now) })
      } else if (claims.exp * 1000 <= now) {
        return { ok: false, code: 'TOKEN_EXPIRED' }
      }
      const { sub, sid, iat } = claims
      const session = await deps.cache.get(sessionCacheKey(sid), () => deps.findSession(sid))
      if (!session || session.userId !== sub) return { ok: false, code: 'TOKEN_INVALID' }
      // Whole seconds: `iat` has no finer grain. Tokens of the cutoff's own second die with their session, which
      // every cutoff-moving write also revokes.
      if (session.revokedAt !== null || iat < Math.floor(session.tokensValidAfter / 1000)) return { ok: false, code: 'TOKEN_REVOKED' }
      if (!session.userActive) return { ok: false, code: 'USER_INACTIVE' }
      return {
        ok: true,
        // validUntil: streams opened with the token close at its `exp`, as those of an expiring key do.
        principal: { userId: sub, username: session.username, auth: 'jwt', sessionId: sid, scopes: ['*'], credentialId: sessionCredentialId(sid), revocationKey: sessionCacheKey(sid), validUntil: claims.exp * 1000 },
      }
    },
  }
}
