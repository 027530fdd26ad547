import { verify as cryptoVerify } from 'node:crypto'
import { JwksUnavailableError, remoteKeySource, staticKeySource, type KeySource, type PublicJwk } from './jwks-source.ts'

/** The identity Keygate asserts about the caller of an upstream request. */
export interface KeygateIdentity {
  /** The user id. */
  sub: string
  username: string
  auth: 'api_key' | 'jwt'
  keyId: string | null
  sessionId: string | null
  scopes: string[]
  issuer: string
  audience: string
  issuedAt: number
  expiresAt: number
  jti: string
}

export type IdentityDenialCode =
  | 'IDENTITY_MISSING' | 'IDENTITY_MALFORMED' | 'IDENTITY_ALG_UNSUPPORTED' | 'IDENTITY_KEY_UNKNOWN'
  | 'IDENTITY_SIGNATURE_INVALID' | 'IDENTITY_EXPIRED' | 'IDENTITY_NOT_YET_VALID' | 'IDENTITY_AUDIENCE_MISMATCH'
  | 'IDENTITY_ISSUER_MISMATCH' | 'IDENTITY_KEYS_UNAVAILABLE' | 'IDENTITY_BINDING_MISMATCH'

export type IdentityVerdict = { ok: true; identity: KeygateIdentity } | { ok: false; code: IdentityDenialCode }

export interface VerifyIdentityOptions {
  /** The gateway's key set URL (`http://gateway/.well-known/jwks.json`); or give `keys`. */
  jwksUrl?: string
  /** Public keys, a function returning them, or a `KeySource`. */
  keys?: readonly PublicJwk[] | (() => readonly PublicJwk[]) | KeySource
  /** This service's upstream name as configured in Keygate's routes. */
  audience: string
  /** Keygate's issuer (`KEYGATE_ISSUER`, default `keygate`). */
  issuer?: string
  clockToleranceSec?: number
  /**
   * This request's method and path: checked against the assertion's binding (`htm`, `htp`) when it has one.
   * Give them when Keygate's route sets `bind_request`; `requireIdentity` does so by itself.
   */
  request?: { method: string; path: string }
  /** Refuse assertions that carry no request binding. */
  requireBinding?: boolean
  /** Milliseconds since the epoch; tests inject it. */
  now?: () => number
}

const ALGS = new Set(['EdDSA', 'ES256'])
const remoteSources = new Map<string, KeySource>()

function sourceOf(options: VerifyIdentityOptions): KeySource {
  const { keys, jwksUrl } = options
  if (keys && typeof keys === 'object' && 'get' in keys && typeof keys.get === 'function') return keys as KeySource
  if (keys) return staticKeySource(keys as readonly PublicJwk[] | (() => readonly PublicJwk[]))
  if (!jwksUrl) throw new TypeError('verifyIdentity needs jwksUrl or keys')
  let source = remoteSources.get(jwksUrl)
  if (!source) remoteSources.set(jwksUrl, (source = remoteKeySource(jwksUrl)))
  return source
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/

/**
 * Verifies the `x-keygate-identity` header value Keygate injected: signature against the gateway's published
 * keys (EdDSA or ES256 only; the key type must match the algorithm), issuer, audience, `exp` (required),
 * `nbf`/`iat` not in the future. Returns the identity, or a denial with its code; never throws for a bad token.
 *
 * @example
 * const verdict = await verifyIdentity(req.headers['x-keygate-identity'], { jwksUrl: 'http://keygate:8000/.well-known/jwks.json', audience: 'documents' })
 * if (!verdict.ok) return res.status(401).end()
 */
export async function verifyIdentity(value: string | string[] | undefined, options: VerifyIdentityOptions): Promise<IdentityVerdict> {
  if (value === undefined || value === '') return { ok: false, code: 'IDENTITY_MISSING' }
  if (typeof value !== 'string' || value.length > 8192) return { ok: false, code: 'IDENTITY_MALFORMED' }
  const parts = value.split('.')
  // The signature may be empty: that is how an `alg: none` token looks, and it is refused below for its alg.
  if (parts.length !== 3 || !B64URL.test(parts[0]!) || !B64URL.test(parts[1]!) || !/^[A-Za-z0-9_-]*$/.test(parts[2]!)) return { ok: false, code: 'IDENTITY_MALFORMED' }
  const [h, p, s] = parts as [string, string, string]
  const header = decodeJson(h)
  const claims = decodeJson(p)
  if (!header || !claims) return { ok: false, code: 'IDENTITY_MALFORMED' }
  const alg = header.alg
  if (typeof alg !== 'string' || !ALGS.has(alg)) return { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' }
  if (typeof header.kid !== 'string') return { ok: false, code: 'IDENTITY_KEY_UNKNOWN' }

  let found
  try {
    found = await sourceOf(options).get(header.kid)
  } catch (err) {
    if (err instanceof JwksUnavailableError) return { ok: false, code: 'IDENTITY_KEYS_UNAVAILABLE' }
    throw err
  }
  if (!found) return { ok: false, code: 'IDENTITY_KEY_UNKNOWN' }
  // The key decides the algorithm, never the token: an Ed25519 key verifies only EdDSA, a P-256 key only ES256.
  const { jwk, key } = found
  const keyAlg = jwk.kty === 'OKP' && jwk.crv === 'Ed25519' ? 'EdDSA' : jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : undefined
  if (keyAlg !== alg) return { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' }
  const data = Buffer.from(`${h}.${p}`)
  const signature = Buffer.from(s, 'base64url')
  const valid = alg === 'EdDSA'
    ? cryptoVerify(null, data, key, signature)
    : cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  if (!valid) return { ok: false, code: 'IDENTITY_SIGNATURE_INVALID' }

  const issuer = options.issuer ?? 'keygate'
  if (claims.iss !== issuer) return { ok: false, code: 'IDENTITY_ISSUER_MISMATCH' }
  const aud = claims.aud
  if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience)))) return { ok: false, code: 'IDENTITY_AUDIENCE_MISMATCH' }
  const now = (options.now ?? Date.now)() / 1000
  const tolerance = options.clockToleranceSec ?? 5
  const { exp, nbf, iat } = claims
  if (typeof exp !== 'number') return { ok: false, code: 'IDENTITY_MALFORMED' }
  if (exp <= now - tolerance) return { ok: false, code: 'IDENTITY_EXPIRED' }
  if ((typeof nbf === 'number' && nbf > now + tolerance) || (typeof iat === 'number' && iat > now + tolerance)) return { ok: false, code: 'IDENTITY_NOT_YET_VALID' }
  const { htm, htp } = claims
  if (typeof htm === 'string' || typeof htp === 'string') {
    const r = options.request
    if (r) {
      const path = r.path.split('?')[0]!
      const prefix = typeof htp === 'string' ? htp.replace(/\/$/, '') : ''
      const underPrefix = prefix === '' || path === prefix || path.startsWith(prefix + '/')
      if (htm !== r.method.toUpperCase() || !underPrefix) return { ok: false, code: 'IDENTITY_BINDING_MISMATCH' }
    }
  } else if (options.requireBinding) {
    return { ok: false, code: 'IDENTITY_BINDING_MISMATCH' }
  }
  const { sub, username, auth, key_id, sid, scopes, jti } = claims
  if (typeof sub !== 'string' || typeof username !== 'string' || (auth !== 'api_key' && auth !== 'jwt')) return { ok: false, code: 'IDENTITY_MALFORMED' }
  return {
    ok: true,
    identity: {
      sub,
      username,
      auth,
      keyId: typeof key_id === 'string' ? key_id : null,
      sessionId: typeof sid === 'string' ? sid : null,
      scopes: Array.isArray(scopes) ? scopes.filter((x): x is string => typeof x === 'string') : [],
      issuer,
      audience: options.audience,
      issuedAt: typeof iat === 'number' ? iat : 0,
      expiresAt: exp,
      jti: typeof jti === 'string' ? jti : '',
    },
  }
}
