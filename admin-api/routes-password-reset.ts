import { Router, type Request } from 'express'
import type { PasswordResets } from '../core/password-resets.ts'
import { clientAddress, parse, sendError } from './http.ts'
import { PasswordResetConfirmQuery, PasswordResetRequestQuery } from './schemas.ts'

const SENT = 'Password reset email sent if account exists'

/**
 * The contract's password reset: public, parameters in the query string (as the original took them). Without
 * a mail transport (`resets` undefined) both answer 501 PASSWORD_RESET_UNAVAILABLE, never 401.
 */
export function passwordResetRoutes(deps: { resets?: PasswordResets }): Router {
  const r = Router()
  const actor = (req: Request) => ({ address: clientAddress(req) })

  r.post('/password-reset/request', async (req, res) => {
    if (!deps.resets) return sendError(res, 'PASSWORD_RESET_UNAVAILABLE')
    const q = parse(PasswordResetRequestQuery, req.query, 'query')
    // The same answer whether or not the address belongs to anyone: no user enumeration.
    await deps.resets.request(q.email, actor(req))
    res.set('cache-control', 'no-store').json({ message: SENT })
  })

  r.post('/password-reset/confirm', async (req, res) => {
    if (!deps.resets) return sendError(res, 'PASSWORD_RESET_UNAVAILABLE')
    const q = parse(PasswordResetConfirmQuery, req.query, 'query')
    if (!(await deps.resets.confirm(q.token, q.new_password, actor(req)))) return sendError(res, 'RESET_TOKEN_INVALID')
    res.set('cache-control', 'no-store').json({ message: 'Password has been reset successfully' })
  })
  return r
}
