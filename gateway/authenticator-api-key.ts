import { timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { hashApiKey, type ApiKeyFormat } from '../core/api-key-format.ts'
import type { Clock } from '../core/clock.ts'
import type { CredentialCache } from '../core/credential-cache.ts'
import { keyCacheKey, keyCredentialId } from '../core/credential-keys.ts'
import type { KeyRecord } from '../core/key-store.ts'
import { KeygateError } from '../core/errors.ts'
import type { AuthResult, Authenticator, Principal } from './authenticator.ts'
import { keyLimitsOf } from '../core/key-limits.ts'
import type { UnknownKeyLimiter } from './unknown-key-limiter.ts'
import { TUNABLES } from '../config/tunables.ts'

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
  /** Well-formed keys whose hash is remembered (see `KeyVerdict`). */
  verdictsMax?: number
}

/**
 * What is known of one raw key without asking anything: its checksum held (only well-formed keys get one) and
 * its hash. Both follow from the key alone, so they never go stale; what can change (revocation, expiry, the
 * user's state) lives in the cached record, which a revocation drops by hash and which is read on every request.
 * `record` is the cached record this key last matched in constant time, with the principal and the acceptance
 * built from it: they are reused while the cache serves that same record, and built anew when it serves another.
 */
interface KeyVerdict {
  readonly hash: string
  readonly cacheKey: string
  record?: KeyRecord
  accepted?: AuthResult
}

const MALFORMED: AuthResult = Object.freeze({ ok: false, code: 'KEY_MALFORMED' })
const UNKNOWN: AuthResult = Object.freeze({ ok: false, code: 'KEY_UNKNOWN' })

/**
 * API keys (`sk_live_…`): the checksum is checked before anything else, so a mistyped or invented key costs
 * no lookup; then the SHA-256 is looked up through the cache. Expiry, revocation and the user's state are
 * re-checked on every hit, from the cached record, against the clock.
 *
 * A warm key is decided synchronously: its checksum verdict and hash are remembered per raw key (bounded,
 * least recently used first out), and the in-process cache answers without a promise. Revocation still acts at
 * once: it drops the record, not the verdict, and the next request finds no record and asks the store.
 */
export function apiKeyAuthenticator(deps: ApiKeyAuthenticatorDeps): Authenticator {
  const verdicts = new LRUCache<string, KeyVerdict>({ max: Math.max(1, deps.verdictsMax ?? TUNABLES.caches.keyVerdictsMax) })

  function decide(verdict: KeyVerdict, record: KeyRecord | null): AuthResult {
    if (!record) return UNKNOWN
    if (verdict.record !== record) {
      // The lookup is by hash already; comparing again in constant time keeps a future store honest. Once per
      // record the cache serves, not per request.
      if (!timingSafeEqual(Buffer.from(record.keyHash, 'hex'), Buffer.from(verdict.hash, 'hex'))) return UNKNOWN
      verdict.record = record
      verdict.accepted = Object.freeze({ ok: true, principal: principalOf(record) })
    }
    const now = deps.clock.now()
    if (record.revokedAt !== null && record.revokedAt <= now) return { ok: false, code: 'KEY_REVOKED', keyId: record.keyId }
    if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, code: 'KEY_EXPIRED', keyId: record.keyId }
    if (!record.userActive) return { ok: false, code: 'USER_INACTIVE', keyId: record.keyId }
    deps.recordUse?.(record.keyId)
    return verdict.accepted!
  }

  function lookup(verdict: KeyVerdict, clientAddress: (() => string) | undefined): Promise<KeyRecord | null> {
    const limiter = clientAddress === undefined ? undefined : deps.unknownKeys
    return deps.cache.get(verdict.cacheKey, async () => {
      const address = limiter && clientAddress!()
      // Only a lookup that reaches the store counts: cached keys, known or unknown, cost nothing.
      if (limiter && !limiter.reserve(address!)) throw new KeygateError('KEY_LOOKUPS_LIMITED', 'unknown-key lookups limited for this address')
      let found: KeyRecord | null | undefined
      try {
        found = await deps.findByHash(verdict.hash)
      } finally {
        // A key that exists, or a lookup that failed (the store is down: 503), does not count as unknown.
        if (found !== null) limiter?.found(address!)
      }
      return found
    })
  }

  return {
    name: 'api_key',
    accepts: (credential) => deps.format.looksLikeKey(credential),
    authenticate(credential, context) {
      let verdict = verdicts.get(credential)
      if (verdict === undefined) {
        // A malformed key is not remembered: its checksum is all it costs.
        if (!deps.format.isWellFormed(credential)) return MALFORMED
        const hash = hashApiKey(credential)
        verdict = { hash, cacheKey: keyCacheKey(hash) }
        verdicts.set(credential, verdict)
      }
      const cached = deps.cache.peek(verdict.cacheKey)
      if (cached !== undefined) return decide(verdict, cached)
      const v = verdict
      return lookup(v, context?.clientAddress).then((record) => decide(v, record))
    },
  }
}

/** The principal of a key, built once per cached record; it carries the key's own limits when it has any. */
function principalOf(record: KeyRecord): Principal {
  // A revocation time still ahead is the end of a rolled key's grace period.
  const until = record.revokedAt === null ? record.expiresAt : record.expiresAt === null ? record.revokedAt : Math.min(record.expiresAt, record.revokedAt)
  const limits = keyLimitsOf(record.rateLimit ?? null, record.quota ?? null)
  const principal: { -readonly [K in keyof Principal]: Principal[K] } = {
    userId: record.userId,
    username: record.username,
    auth: 'api_key',
    keyId: record.keyId,
    scopes: record.scopes.length ? record.scopes : ['*'],
    credentialId: keyCredentialId(record.keyId),
    revocationKey: keyCacheKey(record.keyHash),
  }
  if (until !== null) principal.validUntil = until
  if (limits) principal.limits = limits
  return Object.freeze(principal)
}
