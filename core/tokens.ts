import { createHash, randomBytes, randomUUID } from 'node:crypto'
import jwt from 'jsonwebtoken'
import type { Clock } from './clock.ts'

/**
 * Access tokens (JWT, HS256 with a secret from configuration or generated once and shared through the
 * database) and refresh tokens (opaque random strings, stored only as SHA-256). A refresh token is not a JWT,
 * so it can never pass as an access token.
 */
export interface AccessClaims {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
  type: 'access'
}

export type AccessVerdict =
  | { ok: true; claims: AccessClaims }
  | { ok: false; code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' }

export interface TokenService {
  readonly accessTtlSec: number
  readonly refreshTtlSec: number
  issueAccess(userId: string, sessionId: string): { token: string; expiresIn: number; claims: AccessClaims }
  verifyAccess(token: string): AccessVerdict
  newRefreshToken(): { token: string; hash: string; expiresAt: Date }
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex')

const ALGORITHMS: jwt.Algorithm[] = ['HS256']

export function tokenService(deps: { secret: string; issuer: string; audience: string; accessTtlSec: number; refreshTtlSec: number; clock: Clock }): TokenService {
  const { secret, issuer, audience, clock } = deps
  if (Buffer.byteLength(secret) < 32) throw new RangeError('the token signing secret must be at least 32 bytes')
  return {
    accessTtlSec: deps.accessTtlSec,
    refreshTtlSec: deps.refreshTtlSec,
    issueAccess(userId, sessionId) {
      const iat = Math.floor(clock.now() / 1000)
      const claims: AccessClaims = { sub: userId, sid: sessionId, jti: randomUUID(), iat, exp: iat + deps.accessTtlSec, type: 'access' }
      const token = jwt.sign({ ...claims, iss: issuer, aud: audience }, secret, { algorithm: 'HS256' })
      return { token, expiresIn: deps.accessTtlSec, claims }
    },
    verifyAccess(token) {
      let payload: jwt.JwtPayload | string
      try {
        payload = jwt.verify(token, secret, { algorithms: ALGORITHMS, issuer, audience, clockTimestamp: Math.floor(clock.now() / 1000) })
      } catch (err) {
        return { ok: false, code: err instanceof jwt.TokenExpiredError ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID' }
      }
      if (typeof payload !== 'object') return { ok: false, code: 'TOKEN_INVALID' }
      const { sub, sid, jti, iat, exp, type } = payload as Record<string, unknown>
      // jsonwebtoken checks `exp` only when present: a token without one must not live forever.
      if (type !== 'access' || typeof exp !== 'number' || typeof iat !== 'number' || typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
        return { ok: false, code: 'TOKEN_INVALID' }
      }
      return { ok: true, claims: { sub, sid, jti, iat, exp, type } }
    },
    newRefreshToken() {
      const token = 'rt_' + randomBytes(32).toString('base64url')
      return { token, hash: hashRefreshToken(token), expiresAt: new Date(clock.now() + deps.refreshTtlSec * 1000) }
    },
  }
}
