import type { Invalidation } from './invalidation.ts'

/**
 * The cache keys of credentials, defined once: the in-process cache, the shared Redis layer, the tombstones a
 * revocation writes and the open-stream registry all name a credential by these.
 */
export const keyCacheKey = (keyHash: string): string => `k:${keyHash}`
export const sessionCacheKey = (sessionId: string): string => `s:${sessionId}`

/** The id of a credential (never its secret) for caches of values derived from it, like the signed identity. */
export const keyCredentialId = (keyId: string): string => `k:${keyId}`
export const sessionCredentialId = (sessionId: string): string => `s:${sessionId}`

/** The cache key a message names, or undefined when it names none (a user, the signing keys). */
export function cacheKeyOf(message: Invalidation): string | undefined {
  return message.kind === 'key' ? keyCacheKey(message.keyHash) : message.kind === 'session' ? sessionCacheKey(message.sessionId) : undefined
}
