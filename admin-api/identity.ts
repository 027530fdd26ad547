import type { NextFunction, Request, Response } from 'express'
import { verifyIdentity, type KeygateIdentity, type VerifyIdentityOptions } from '@keygate/verify'
import { sendError } from './http.ts'

/** `aud` of the identities the gateway signs for the admin API: its upstream name in the route file. */
export const ADMIN_AUDIENCE = 'admin'

/**
 * The admin API trusts nothing but the gateway's signed identity header: the same verifier upstream
 * services import. A missing or invalid assertion is 401; the gateway never lets a client's own copy through.
 * When the gateway's key set cannot be fetched (the admin API runs apart from the gateway) the answer is 503
 * IDENTITY_KEYS_UNAVAILABLE: our own dependency failed, the caller did nothing wrong.
 */
export function identityMiddleware(options: VerifyIdentityOptions & { header: string }) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const verdict = await verifyIdentity(req.headers[options.header], options)
    if (!verdict.ok && verdict.code === 'IDENTITY_KEYS_UNAVAILABLE') return sendError(res, 'IDENTITY_KEYS_UNAVAILABLE')
    if (!verdict.ok) return sendError(res, verdict.code === 'IDENTITY_MISSING' ? 'IDENTITY_REQUIRED' : 'TOKEN_INVALID')
    res.locals.identity = verdict.identity
    next()
  }
}

export function identityOf(res: Response): KeygateIdentity {
  const identity = res.locals.identity as KeygateIdentity | undefined
  if (!identity) throw new Error('identity middleware did not run')
  return identity
}
