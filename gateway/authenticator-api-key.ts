import { timingSafeEqual } from 'node:crypto'
import { hashApiKey, type ApiKeyFormat } from '../core/api-key-format.ts'
import type { Clock } from '../core/clock.ts'
import type { CredentialCache } from '../core/credential-cache.ts'
import { keyCacheKey, keyCredentialId } from '../core/credential-keys.ts'
import type { KeyRecord } from '../core/key-store.ts'
import { KeygateError } from '../core/errors.ts'
import type { Authenticator } from './authenticator.ts'
import { keyLimitsOf } from '../core/key-limits.ts'
import type { UnknownKeyLimiter } from './unknown-key-limiter.ts'

export interface ApiKeyAuthenticatorDeps {
  format: ApiKeyFormat
  cache: CredentialCache<KeyRecord>
  /** The key with this SHA-256 hash, or null; throws DatabaseUnavailableError when the store is down. */
  findByHash(hash: string): Promise<KeyRecord | null>
  clock: Clock
  /** Told about every accepted key, for the batched `last_used_at`. */
  recordUse?(keyId: string): void
  /** Bounds the database lookups of unknown keys per client address. */
  unknownKeys?: UnknownKeyLimiter
}

/**
 * API keys (`sk_live_…`): the checksum is checked before anything else, so a mistyped or invented key costs
 * no lookup; then the SHA-256 is looked up through the cache. Expiry, revocation and the user's state are
 * re-checked on every hit, from the cached record.
 */
export function apiKeyAuthenticator(deps: ApiKeyAuthenticatorDeps): Authenticator {
  return {
    name: 'api_key',
    accepts: (credential) => deps.format.looksLikeKey(credential),
    async authenticate(credential, context) {
      if (!deps.format.isWellFormed(credential)) return { ok: false, code: 'KEY_MALFORMED' }
      const hash = hashApiKey(credential)
      const address = context?.clientAddress
      const limiter = address === undefined ? undefined : deps.unknownKeys
      const record = await deps.cache.get(keyCacheKey(hash), async () => {
        // Only a lookup that reaches the store counts: cached keys, known or unknown, cost nothing.
        if (limiter && !limiter.reserve(address!)) throw new KeygateError('KEY_LOOKUPS_LIMITED', 'unknown-key lookups limited for this address')
        let found: KeyRecord | null | undefined
        try {
          found = await deps.findByHash(hash)
        } finally {
          // A key that exists, or a lookup that failed (the store is down: 503), does not count as unknown.
          if (found !== null) limiter?.found(address!)
        }
        return found
      })
      // The lookup is by hash already; comparing again in constant time keeps a future store honest.
      if (!record || !timingSafeEqual(Buffer.from(record.keyHash, 'hex'), Buffer.from(hash, 'hex'))) return { ok: false, code: 'KEY_UNKNOWN' }
      const now = deps.clock.now()
      if (record.revokedAt !== null && record.revokedAt <= now) return { ok: false, code: 'KEY_REVOKED', keyId: record.keyId }
      if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, code: 'KEY_EXPIRED', keyId: record.keyId }
      if (!record.userActive) return { ok: false, code: 'USER_INACTIVE', keyId: record.keyId }
      deps.recordUse?.(record.keyId)
      // A revocation time still ahead is the end of a rolled key's grace period.
      const until = record.revokedAt === null ? record.expiresAt : record.expiresAt === null ? record.revokedAt : Math.min(record.expiresAt, record.revokedAt)
      return {
        ok: true,
        principal: {
          userId: record.userId,
          username: record.username,
          auth: 'api_key',
          keyId: record.keyId,
          scopes: record.scopes.length ? record.scopes : ['*'],
          credentialId: keyCredentialId(record.keyId),
          revocationKey: keyCacheKey(record.keyHash),
          ...(until !== null ? { validUntil: until } : {}),
          ...limitsOf(record),
        },
      }
    },
  }
}

/** The key's own limits for its principal; nothing when it has none. */
function limitsOf(record: KeyRecord): { limits?: NonNullable<ReturnType<typeof keyLimitsOf>> } {
  const limits = keyLimitsOf(record.rateLimit ?? null, record.quota ?? null)
  return limits ? { limits } : {}
}
