import type { ErrorCode } from '../core/error-codes.ts'
import type { KeyLimits } from '../core/key-limits.ts'

/** Who the caller is, once a credential was accepted. */
export interface Principal {
  readonly userId: string
  readonly username: string
  readonly auth: 'api_key' | 'jwt'
  readonly keyId?: string
  readonly sessionId?: string
  /** `['*']` for an unrestricted credential. */
  readonly scopes: readonly string[]
  /** Identifies the credential (not the secret) for caches of derived values, like the signed identity. */
  readonly credentialId: string
  /** The cache key a revocation of this credential names (`k:<key hash>`, `s:<session id>`). */
  readonly revocationKey: string
  /**
   * When the credential stops being accepted by a deadline (an API key's expiry, the end of a rolled key's grace
   * period, an access token's `exp`), ms since the epoch; exchanges it opened are closed then.
   */
  readonly validUntil?: number
  /** An API key's own rate limit and quotas (see `stage-rate-limit.ts`). */
  readonly limits?: KeyLimits
}

export type AuthDenialCode = Extract<ErrorCode, 'KEY_MALFORMED' | 'KEY_UNKNOWN' | 'KEY_REVOKED' | 'KEY_EXPIRED' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED' | 'USER_INACTIVE'>

/** A refusal of a key that exists (revoked, expired, its user inactive) names it by id for the access line; never the secret. */
export type AuthResult = { ok: true; principal: Principal } | { ok: false; code: AuthDenialCode; keyId?: string }

/**
 * One way of proving identity. `accepts` says whether the credential is this authenticator's kind (no I/O);
 * the first that accepts decides. Expected denials are results; infrastructure faults throw `KeygateError`
 * (or reject with it). `authenticate` answers synchronously when it needs no I/O (a credential its in-process
 * cache holds), so a warm request costs no promise; otherwise it returns a promise.
 */
export interface Authenticator {
  readonly name: 'api_key' | 'jwt'
  accepts(credential: string): boolean
  authenticate(credential: string, context?: AuthContext): AuthResult | Promise<AuthResult>
}

/** What an authenticator may know about the request besides the credential. */
export interface AuthContext {
  /**
   * The client's address as the gateway established it (see `forwarded-headers.ts`); a function, since only a
   * lookup that reaches the store needs it.
   */
  readonly clientAddress?: () => string
}
