import { randomUUID, sign } from 'node:crypto'
import type { Clock } from './clock.ts'
import type { PublishedJwk, SigningKey } from './signing-keys.ts'

/** The claims of the internal identity assertion that upstream services verify (see `verify/`). */
export interface IdentityInput {
  /** The route's upstream name: an assertion minted for one upstream is refused by every other. */
  aud: string
  sub: string
  username: string
  auth: 'api_key' | 'jwt'
  key_id?: string
  /** Login session of a JWT; the admin API uses it to end this session on logout. */
  sid?: string
  scopes: readonly string[]
  /** Request binding (route option `bind_request`): the method and the route prefix the assertion was minted for. */
  htm?: string
  htp?: string
}

export interface IdentitySigner {
  readonly ttlSec: number
  /** Signs with the first key; returns the compact JWS and its `exp` in seconds. */
  sign(input: IdentityInput): { value: string; exp: number }
  /** The public key set: every configured key, the signing one first. */
  jwks(): { keys: PublishedJwk[] }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

export function identitySigner(deps: { keys: readonly SigningKey[]; issuer: string; ttlSec: number; clock: Clock }): IdentitySigner {
  const [current] = deps.keys
  if (!current) throw new RangeError('at least one identity signing key is required')
  const header = b64({ alg: current.alg, kid: current.kid, typ: 'JWT' })
  const jwks = { keys: deps.keys.map((k) => k.publicJwk) }
  return {
    ttlSec: deps.ttlSec,
    sign(input) {
      const iat = Math.floor(deps.clock.now() / 1000)
      const exp = iat + deps.ttlSec
      const claims = { iss: deps.issuer, ...input, iat, exp, jti: randomUUID() }
      const signingInput = `${header}.${b64(claims)}`
      const signature = current.alg === 'EdDSA'
        ? sign(null, Buffer.from(signingInput), current.privateKey)
        : sign('sha256', Buffer.from(signingInput), { key: current.privateKey, dsaEncoding: 'ieee-p1363' })
      return { value: `${signingInput}.${signature.toString('base64url')}`, exp }
    },
    jwks: () => jwks,
  }
}
