import type { ErrorCode } from '../core/error-codes.ts'
import type { Authenticator, Principal } from './authenticator.ts'
import type { CredentialResult } from './stage-credential.ts'
import type { Route } from './router.ts'

export type AuthStageResult = { ok: true; principal: Principal | null } | { ok: false; code: ErrorCode }

const ANONYMOUS: AuthStageResult = Object.freeze({ ok: true, principal: null })
const DENIED: Partial<Record<ErrorCode, AuthStageResult>> = {}
const denied = (code: ErrorCode): AuthStageResult => (DENIED[code] ??= Object.freeze({ ok: false, code }))

/**
 * Stage 4, its part without I/O: applies the route's auth mode. `public` never reads the credential;
 * `optional` lets a request without one through anonymously but rejects a bad one; `required` needs one.
 * Returns the verdict when no lookup is needed, else the authenticator that must decide on the bearer
 * credential (see `admission.ts`, which then checks the route's scopes with `withinScopes`).
 */
export function authenticatorFor(route: Route, credential: CredentialResult, authenticators: readonly Authenticator[]): AuthStageResult | Authenticator {
  if (route.auth === 'public') return ANONYMOUS
  if (credential.kind === 'malformed') return denied(credential.code)
  if (credential.kind === 'none') return route.auth === 'optional' ? ANONYMOUS : denied('AUTH_REQUIRED')
  for (const a of authenticators) if (a.accepts(credential.value)) return a
  return denied('TOKEN_INVALID')
}

/** Whether `principal` holds every scope the route requires (`*` holds them all). */
export function withinScopes(route: Route, principal: Principal): boolean {
  const { scopes } = principal
  return route.scopes.length === 0 || scopes.includes('*') || route.scopes.every((s) => scopes.includes(s))
}
