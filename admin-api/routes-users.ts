import { Router, type NextFunction, type Request, type Response } from 'express'
import { z } from 'zod'
import type { Accounts } from '../core/accounts.ts'
import { auditStore } from '../core/audit-store.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import { KeygateError } from '../core/errors.ts'
import { userStore } from '../core/user-store.ts'
import { clientAddress, oneUserJson, parse, sendError, userJson, usersJson } from './http.ts'
import { identityOf } from './identity.ts'
import { requireScope } from './scopes.ts'
import { AuditQuery, CreateUserRequest, ListUsersQuery, PatchUserRequest } from './schemas.ts'

const UserIdParam = z.strictObject({ id: z.uuid() })

/** Superuser administration of users, and the audit trail (superusers see all; others their own events). */
export function userRoutes(deps: { db: Db; accounts: Accounts; clock: Clock }): Router {
  const r = Router()
  const actor = (req: Request, res: Response) => ({ userId: identityOf(res).sub, address: clientAddress(req) })
  const now = () => new Date(deps.clock.now())

  async function superuserOnly(_req: Request, res: Response, next: NextFunction) {
    const me = await userStore.findById(deps.db, identityOf(res).sub)
    if (!me?.is_active) return sendError(res, 'USER_INACTIVE')
    if (!me.is_superuser) return sendError(res, 'NOT_SUPERUSER')
    next()
  }

  r.get('/users', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const q = parse(ListUsersQuery, req.query, 'query')
    const [users, total] = await Promise.all([userStore.list(deps.db, q.limit, q.offset), userStore.count(deps.db)])
    res.json({ users: await usersJson(deps.db, now(), users), total, offset: q.offset, limit: q.limit })
  })

  r.post('/users', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const body = parse(CreateUserRequest, req.body)
    const { username, password, email, is_superuser: isSuperuser, ...profile } = body
    const user = await deps.accounts.createUser({ username, password, email, profile, isSuperuser }, actor(req, res))
    res.status(201).json(userJson(user, null))
  })

  r.patch('/users/:id', requireScope('users:admin'), superuserOnly, async (req, res) => {
    const { id } = parse(UserIdParam, req.params, 'path')
    const body = parse(PatchUserRequest, req.body)
    let user = await userStore.findById(deps.db, id)
    if (!user) throw new KeygateError('NOT_FOUND', 'no such user')
    if (body.is_active !== undefined && body.is_active !== user.is_active) user = await deps.accounts.setActive(id, body.is_active, actor(req, res))
    if (body.is_superuser !== undefined || body.is_verified !== undefined) user = (await userStore.setFlags(deps.db, id, { is_superuser: body.is_superuser, is_verified: body.is_verified }, now()))!
    const limits = { daily_message_limit: body.daily_message_limit, monthly_message_limit: body.monthly_message_limit, max_file_size_mb: body.max_file_size_mb }
    if (Object.values(limits).some((v) => v !== undefined)) user = (await userStore.updateProfile(deps.db, id, limits, now()))!
    if (body.password !== undefined) await deps.accounts.setPassword(id, body.password, actor(req, res))
    res.json(await oneUserJson(deps.db, now(), user))
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
