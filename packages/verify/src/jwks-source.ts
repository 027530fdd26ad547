import { createPublicKey, type KeyObject } from 'node:crypto'

/** A public JWK as published at `/.well-known/jwks.json`. */
export interface PublicJwk { kty: string; kid?: string; alg?: string; crv?: string; x?: string; y?: string; use?: string }

/** Where the verifier gets public keys from. */
export interface KeySource {
  /** The key for `kid`; `undefined` when unknown even after a refetch. Throws only when no key set was ever loaded. */
  get(kid: string): Promise<{ jwk: PublicJwk; key: KeyObject } | undefined>
}

function index(jwks: readonly PublicJwk[]): Map<string, { jwk: PublicJwk; key: KeyObject }> {
  const out = new Map<string, { jwk: PublicJwk; key: KeyObject }>()
  for (const jwk of jwks) {
    if (typeof jwk.kid !== 'string') continue
    try {
      out.set(jwk.kid, { jwk, key: createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }) })
    } catch {
      // A key this runtime cannot load is skipped, not fatal: the others still verify.
    }
  }
  return out
}

/** A fixed key set, or a function returning the current one (in-process use). */
export function staticKeySource(keys: readonly PublicJwk[] | (() => readonly PublicJwk[])): KeySource {
  let last: readonly PublicJwk[] | undefined
  let map = new Map<string, { jwk: PublicJwk; key: KeyObject }>()
  return {
    async get(kid) {
      const now = typeof keys === 'function' ? keys() : keys
      if (now !== last) { map = index(now); last = now }
      return map.get(kid)
    },
  }
}

export class JwksUnavailableError extends Error {
  readonly code = 'IDENTITY_KEYS_UNAVAILABLE'
  constructor(url: string, cause: unknown) {
    super(`could not fetch the key set from ${url}`, { cause })
    this.name = 'JwksUnavailableError'
  }
}

/**
 * A remote JWKS: fetched on first use, refreshed in the background once older than `maxAgeMs` (300 s, the
 * gateway's max-age), refetched when an unknown `kid` arrives (at most once per `cooldownMs`, so garbage
 * `kid`s cannot make it hammer the gateway), and on failure the last good set keeps serving.
 */
export function remoteKeySource(url: string, options: { cooldownMs?: number; maxAgeMs?: number; timeoutMs?: number; now?: () => number } = {}): KeySource {
  const cooldown = options.cooldownMs ?? 10_000
  const maxAge = options.maxAgeMs ?? 300_000
  const now = options.now ?? Date.now
  let map: Map<string, { jwk: PublicJwk; key: KeyObject }> | undefined
  let lastFetch = -Infinity
  let inflight: Promise<void> | undefined

  async function refresh(): Promise<void> {
    lastFetch = now()
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const body = (await res.json()) as { keys?: PublicJwk[] }
      if (!Array.isArray(body.keys)) throw new Error('no "keys" array')
      map = index(body.keys)
    } catch (err) {
      if (!map) throw new JwksUnavailableError(url, err)
    }
  }

  return {
    async get(kid) {
      const hit = map?.get(kid)
      if (hit) {
        // A set older than maxAge is refreshed in the background, so a key published ahead of a rotation is
        // known before anything is signed with it.
        if (!inflight && now() - lastFetch >= maxAge) inflight = refresh().catch(() => {}).finally(() => { inflight = undefined })
        return hit
      }
      // A fetch under way answers this kid too.
      if (inflight) {
        await inflight
        return map?.get(kid)
      }
      // Within the cooldown nothing is fetched: an unknown kid is unknown, and with no set ever loaded the
      // gateway is unreachable (a burst of requests must not become a burst of fetches).
      if (now() - lastFetch < cooldown) {
        if (map) return undefined
        throw new JwksUnavailableError(url, new Error('the last fetch failed; retrying after the cooldown'))
      }
      inflight = refresh().finally(() => { inflight = undefined })
      await inflight
      return map?.get(kid)
    },
  }
}
