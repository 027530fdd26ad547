import type { IncomingMessage, ServerResponse } from 'node:http'
import { verifyIdentity, type KeygateIdentity, type VerifyIdentityOptions } from './verify-identity.ts'

export const IDENTITY_HEADER = 'x-keygate-identity'

/** The request after `requireIdentity`: `identity` is the verified caller. */
export type IdentifiedRequest = IncomingMessage & { identity?: KeygateIdentity }

/**
 * Express/Connect middleware: verifies the identity header and puts the identity on `req.identity`; answers
 * 401 in Keygate's problem+json shape (with the denial code) when it is missing or invalid.
 */
export function requireIdentity(options: VerifyIdentityOptions & { header?: string }) {
  const header = options.header ?? IDENTITY_HEADER
  return function keygateIdentity(req: IdentifiedRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    verifyIdentity(req.headers[header], { request: { method: req.method ?? 'GET', path: (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/' }, ...options }).then((verdict) => {
      if (verdict.ok) {
        req.identity = verdict.identity
        return next()
      }
      const status = verdict.code === 'IDENTITY_KEYS_UNAVAILABLE' ? 503 : 401
      const body = JSON.stringify({
        type: `urn:keygate:error:${verdict.code}`,
        title: status === 401 ? 'Authentication Required' : 'Service Unavailable',
        status,
        detail: status === 401 ? 'Invalid or missing identity assertion' : 'The identity key set is unavailable',
        code: verdict.code,
      })
      res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }, next)
  }
}
