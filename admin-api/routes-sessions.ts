import { Router, type Request, type Response } from 'express'
import type { Accounts } from '../core/accounts.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import { sessionStore } from '../core/session-store.ts'
import { clientAddress } from './http.ts'
import { identityOf } from './identity.ts'
import { requireScope } from './scopes.ts'

/** At most this many sessions are listed (a user with more has forgotten to log out somewhere: log out everywhere). */
export const SESSION_LIST_CAP = 100

const iso = (d: Date) => d.toISOString()

/**
 * A user's login sessions (extension): `GET /sessions` lists the live ones, never a token; `POST /logout-all`
 * ends every one of them, this one included, on every instance at once (through the transactional publisher,
 * like every access-removing write). API keys are not sessions: they stay valid.
 */
export function sessionListRoutes(deps: { db: Db; accounts: Accounts; clock: Clock }): Router {
  const r = Router()
  const actor = (req: Request, res: Response) => ({ userId: identityOf(res).sub, address: clientAddress(req) })

  r.get('/sessions', async (_req, res) => {
    const identity = identityOf(res)
    const rows = await sessionStore.listOfUser(deps.db, identity.sub, new Date(deps.clock.now()), SESSION_LIST_CAP)
    res.set('cache-control', 'no-store').json(rows.map((s) => ({
      id: s.id, created_at: iso(s.created_at), last_used_at: iso(s.last_used_at), expires_at: iso(s.expires_at), current: s.id === identity.sessionId,
    })))
  })

  r.post('/logout-all', requireScope('sessions:write'), async (req, res) => {
    const ended = await deps.accounts.logoutEverywhere(identityOf(res).sub, actor(req, res))
    // This browser's refresh token died with its session: its cookie goes too.
    res.append('set-cookie', 'refresh_token=; Path=/api/v1/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict')
    res.json({ message: 'Logged out everywhere', sessions_ended: ended.sessions_ended })
  })
  return r
}
