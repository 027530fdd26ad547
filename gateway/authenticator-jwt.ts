import type { CredentialCache } from '../core/credential-cache.ts'
import type { SessionRecord } from '../core/session-store.ts'
import type { TokenService } from '../core/tokens.ts'
import type { Authenticator } from './authenticator.ts'

export interface JwtAuthenticatorDeps {
  tokens: TokenService
  cache: CredentialCache<SessionRecord>
  findSession(sessionId: string): Promise<SessionRecord | null>
}

export const sessionCacheKey = (sessionId: string) => `s:${sessionId}`

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Access tokens issued at login: signature (algorithm pinned), `exp` required, issuer, audience and
 * `type: access` (a refresh token is never an access token); then the login session, through the cache:
 * logged out, user deactivated or password changed since the token was issued → rejected.
 */
export function jwtAuthenticator(deps: JwtAuthenticatorDeps): Authenticator {
  return {
    name: 'jwt',
    accepts: (credential) => JWT_SHAPE.test(credential),
    async authenticate(credential) {
      const verdict = deps.tokens.verifyAccess(credential)
      if (!verdict.ok) return verdict
      const { sub, sid, iat } = verdict.claims
      const session = await deps.cache.get(sessionCacheKey(sid), () => deps.findSession(sid))
      if (!session || session.userId !== sub) return { ok: false, code: 'TOKEN_INVALID' }
      // Whole seconds: `iat` has no finer grain. Tokens of the cutoff's own second die with their session, which
      // every cutoff-moving write also revokes.
      if (session.revokedAt !== null || iat < Math.floor(session.tokensValidAfter / 1000)) return { ok: false, code: 'TOKEN_REVOKED' }
      if (!session.userActive) return { ok: false, code: 'USER_INACTIVE' }
      return {
        ok: true,
        principal: { userId: sub, username: session.username, auth: 'jwt', sessionId: sid, scopes: ['*'], credentialId: `s:${sid}` },
      }
    },
  }
}
