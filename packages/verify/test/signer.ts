import { createHash, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import type { PublicJwk } from '../src/jwks-source.ts'

/**
 * What the tests of this package sign with: the gateway's identity assertion made here with `node:crypto` alone,
 * so the package is tested without the gateway (the gateway's own tests verify its real signer against it).
 */
export type SigningAlg = 'EdDSA' | 'ES256'
export interface SigningKey { readonly kid: string; readonly alg: SigningAlg; readonly privateKey: KeyObject; readonly publicJwk: PublicJwk & { kid: string } }

export interface IdentityInput {
  aud: string
  sub: string
  username: string
  auth: 'api_key' | 'jwt'
  key_id?: string
  sid?: string
  scopes: readonly string[]
  htm?: string
  htp?: string
}

/** A new key with its RFC 7638 thumbprint as `kid`, as the gateway publishes it. */
export function generateKey(alg: SigningAlg = 'EdDSA'): SigningKey {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string>
  const members = jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y']
  const kid = createHash('sha256').update(JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])))).digest('base64url')
  return { kid, alg, privateKey, publicJwk: { ...(jwk as { kty: string }), kid, alg, use: 'sig' } }
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.UTC(2026, 0, 1)) {
  let t = start
  return { now: () => t, advance: (ms: number) => { t += ms }, set: (ms: number) => { t = ms } }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Signs identities the way the gateway does: `{alg, kid, typ}`, then `iss`, the input, `iat`, `exp`, `jti`. */
export function identitySigner(deps: { keys: readonly SigningKey[]; issuer: string; ttlSec: number; clock: { now(): number } }) {
  const current = deps.keys[0]!
  const header = b64({ alg: current.alg, kid: current.kid, typ: 'JWT' })
  const jwks = { keys: deps.keys.map((k) => k.publicJwk) }
  return {
    sign(input: IdentityInput): { value: string; exp: number } {
      const iat = Math.floor(deps.clock.now() / 1000)
      const exp = iat + deps.ttlSec
      const signingInput = `${header}.${b64({ iss: deps.issuer, ...input, iat, exp, jti: randomUUID() })}`
      const signature = current.alg === 'EdDSA'
        ? sign(null, Buffer.from(signingInput), current.privateKey)
        : sign('sha256', Buffer.from(signingInput), { key: current.privateKey, dsaEncoding: 'ieee-p1363' })
      return { value: `${signingInput}.${signature.toString('base64url')}`, exp }
    },
    jwks: () => jwks,
  }
}
