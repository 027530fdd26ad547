import type { ErrorCode } from '../core/error-codes.ts'
import type { AuthContext, Authenticator, Principal } from './authenticator.ts'
import type { CredentialResult } from './stage-credential.ts'
import type { Route } from './router.ts'

export type AuthStageResult = { ok: true; principal: Principal | null } | { ok: false; code: ErrorCode }

/**
 * Stage 4: applies the route's auth mode. `public` never reads the credential; `optional` lets a request
 * without one through anonymously but rejects a bad one; `required` needs one. Then the route's scopes.
 */
export async function authenticateForRoute(route: Route, credential: CredentialResult, authenticators: readonly Authenticator[], context?: AuthContext): Promise<AuthStageResult> {
  if (route.auth === 'public') return { ok: true, principal: null }
  if (credential.kind === 'malformed') return { ok: false, code: credential.code }
  if (credential.kind === 'none') return route.auth === 'optional' ? { ok: true, principal: null } : { ok: false, code: 'AUTH_REQUIRED' }
  const authenticator = authenticators.find((a) => a.accepts(credential.value))
  if (!authenticator) return { ok: false, code: 'TOKEN_INVALID' }
  const result = await authenticator.authenticate(credential.value, context)
  if (!result.ok) return result
  const { scopes } = result.principal
  if (route.scopes.length && !scopes.includes('*') && !route.scopes.every((s) => scopes.includes(s))) return { ok: false, code: 'INSUFFICIENT_SCOPE' }
  return result
}
