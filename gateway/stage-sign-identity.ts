import { LRUCache } from 'lru-cache'
import type { Clock } from '../core/clock.ts'
import type { IdentitySigner } from '../core/identity-signer.ts'
import type { Principal } from './authenticator.ts'

/**
 * Stage 6: the signed identity for (credential, upstream). Signing costs about half the gateway's throughput
 * when done per request, so each assertion is reused until half its lifetime has passed, then re-signed.
 */
export interface IdentityStamper {
  /** @param binding when given, the assertion names the method and route prefix and is cached per method. */
  stamp(principal: Principal, audience: string, binding?: { method: string; prefix: string }): string
}

/** @param deps.signer the current signer; when it changes (a key rotation), assertions are signed anew. */
export function identityStamper(deps: { signer: () => IdentitySigner; clock: Clock; max?: number }): IdentityStamper {
  type Stamp = { value: string; renewAt: number }
  const cache = new LRUCache<string, Stamp>({ max: deps.max ?? 50_000 })
  // The last unbound assertion of each principal object: the authenticators keep one principal per cached
  // credential, so a warm request finds its assertion here without building a cache key.
  let recent = new WeakMap<Principal, { audience: string; stamp: Stamp }>()
  let lastSigner: IdentitySigner | undefined
  return {
    stamp(principal, audience, binding) {
      const signer = deps.signer()
      if (signer !== lastSigner) {
        cache.clear()
        recent = new WeakMap()
        lastSigner = signer
      }
      const now = deps.clock.now()
      if (!binding) {
        const last = recent.get(principal)
        if (last !== undefined && last.audience === audience && last.stamp.renewAt > now) return last.stamp.value
      }
      const key = binding ? `${principal.credentialId}|${audience}|${binding.method}|${binding.prefix}` : `${principal.credentialId}|${audience}`
      const hit = cache.get(key)
      if (hit && hit.renewAt > now) {
        if (!binding) recent.set(principal, { audience, stamp: hit })
        return hit.value
      }
      const { value } = signer.sign({
        aud: audience,
        sub: principal.userId,
        username: principal.username,
        auth: principal.auth,
        ...(principal.keyId ? { key_id: principal.keyId } : {}),
        ...(principal.sessionId ? { sid: principal.sessionId } : {}),
        scopes: principal.scopes,
        ...(binding ? { htm: binding.method, htp: binding.prefix } : {}),
      })
      const stamp = { value, renewAt: now + (signer.ttlSec * 1000) / 2 }
      cache.set(key, stamp)
      if (!binding) recent.set(principal, { audience, stamp })
      return value
    },
  }
}
