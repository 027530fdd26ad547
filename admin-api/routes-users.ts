import { Router, type NextFunction, type Request, type Response } from 'express'
import { z } from 'zod'
import type { Accounts } from '../core/accounts.ts'
import { auditStore } from '../core/audit-store.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import { KeygateError } from '../core/errors.ts'
import { userStore } from '../core/user-store.ts'
import { clientAddress, parse, sendError, userJson } from './http.ts'
import { identityOf } from './identity.ts'
import { requireScope } from './scopes.ts'
import { AuditQuery, CreateUserRequest, PatchUserRequest } from './schemas.ts'

const UserIdParam = z.strictObject({ id: z.uuid() })
const ListQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(100), offset: z.coerce.number().int().min(0).default(0) })

/** Superuser administration of users, and the audit trail (superusers see all; others their own events). */
export function userRoutes(deps: { db: Db; accounts: Accounts; clock: Clock }): Router {
  const r = Router()
  const actor = (req: Request, res: Response) => ({ userId: identityOf(res).sub, address: clientAddress(req) })

  async function superuserOnly(_req: Request, res: Response, next: NextFunction) {
    const me = await userStore.findById(deps.db, identityOf(res).sub)
    if (!me?.is_active) return sendError(res, 'USER_INACTIVE')
    if (!me.is_superuser) return sendError(res, 'NOT_SUPERUSER')
    next()
  }

  r.get('/users', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const q = parse(ListQuery, req.query, 'query')
    res.json((await userStore.list(deps.db, q.limit, q.offset)).map(userJson))
  })

  r.post('/users', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const body = parse(CreateUserRequest, req.body)
    const user = await deps.accounts.createUser({ username: body.username, password: body.password, email: body.email, fullName: body.full_name, isSuperuser: body.is_superuser }, actor(req, res))
    res.status(201).json(userJson(user))
  })

  r.patch('/users/:id', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const { id } = parse(UserIdParam, req.params, 'path')
    const body = parse(PatchUserRequest, req.body)
    let user = await userStore.findById(deps.db, id)
    if (!user) throw new KeygateError('NOT_FOUND', 'no such user')
    if (body.is_active !== undefined && body.is_active !== user.is_active) user = await deps.accounts.setActive(id, body.is_active, actor(req, res))
    if (body.is_superuser !== undefined) user = (await userStore.setSuperuser(deps.db, id, body.is_superuser, new Date(deps.clock.now())))!
    res.json(userJson(user))
  })

  r.get('/audit', requireScope('audit:read'), async (req, res) => {
    const q = parse(AuditQuery, req.query, 'query')
    const me = await userStore.findById(deps.db, identityOf(res).sub)
    const subject = me?.is_superuser ? q.user_id : me?.id
    if (!me?.is_superuser && q.user_id !== undefined && q.user_id !== me?.id) return sendError(res, 'NOT_SUPERUSER')
    const rows = await auditStore.list(deps.db, { subjectUserId: subject, limit: q.limit, before: q.before })
    res.json(rows.map((e) => ({ ...e, at: e.at.toISOString() })))
  })
  return r
}
