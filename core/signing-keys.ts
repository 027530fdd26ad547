import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'

export type SigningAlg = 'EdDSA' | 'ES256'

/** A key the gateway signs identities with; `publicJwk` is what `/.well-known/jwks.json` publishes. */
export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlg
  readonly privateKey: KeyObject
  readonly publicJwk: PublishedJwk
}

export type PublishedJwk = Readonly<{ kty: string; crv: string; x: string; y?: string; kid: string; alg: SigningAlg; use: 'sig' }>

/** A new private key as PKCS#8 PEM. */
export function generateSigningKeyPem(alg: SigningAlg = 'EdDSA'): string {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

/** RFC 7638 thumbprint: a `kid` that is the same wherever the same key is loaded. */
function thumbprint(jwk: Record<string, string>): string {
  const members = jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y']
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])))
  return createHash('sha256').update(canonical).digest('base64url')
}

/**
 * Loads a private key (PEM or JWK JSON text). The algorithm follows from the key: Ed25519 → EdDSA,
 * P-256 → ES256; any other key is refused.
 */
export function loadSigningKey(text: string): SigningKey {
  const trimmed = text.trim()
  const privateKey = trimmed.startsWith('{')
    ? createPrivateKey({ key: JSON.parse(trimmed) as import('node:crypto').JsonWebKey, format: 'jwk' })
    : createPrivateKey(trimmed)
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string>
  let alg: SigningAlg
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = 'EdDSA'
  else if (jwk.kty === 'EC' && jwk.crv === 'P-256') alg = 'ES256'
  else throw new RangeError('identity signing keys must be Ed25519 (EdDSA) or P-256 (ES256)')
  const kid = thumbprint(jwk)
  return { kid, alg, privateKey, publicJwk: Object.freeze({ ...(jwk as { kty: string; crv: string; x: string; y?: string }), kid, alg, use: 'sig' as const }) }
}
