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
  const cache = new LRUCache<string, { value: string; renewAt: number }>({ max: deps.max ?? 50_000 })
  let lastSigner: IdentitySigner | undefined
  return {
    stamp(principal, audience, binding) {
      const signer = deps.signer()
      if (signer !== lastSigner) {
        cache.clear()
        lastSigner = signer
      }
      const key = binding ? `${principal.credentialId}|${audience}|${binding.method}|${binding.prefix}` : `${principal.credentialId}|${audience}`
      const now = deps.clock.now()
      const hit = cache.get(key)
      if (hit && hit.renewAt > now) return hit.value
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
      cache.set(key, { value, renewAt: now + (signer.ttlSec * 1000) / 2 })
      return value
    },
  }
}
