import { Router, type Request, type Response } from 'express'
import { z } from 'zod'
import type { ApiKeys } from '../core/api-keys.ts'
import type { ApiKeyRow } from '../core/key-store.ts'
import type { Clock } from '../core/clock.ts'
import { ValidationError } from '../core/errors.ts'
import { apiKeyJson, clientAddress, parse, sendError } from './http.ts'
import { identityOf } from './identity.ts'
import { refuseWiderKey, requireScope } from './scopes.ts'
import { CreateApiKeyRequest, ListApiKeysQuery, PatchApiKeyRequest, RollApiKeyRequest } from './schemas.ts'
import type { Db } from '../core/db.ts'
import { userStore } from '../core/user-store.ts'
import { looserLimits } from './key-limits.ts'

const DAY_MS = 86_400_000

const createdJson = (row: { id: string; name: string; created_at: Date; expires_at: Date | null; scopes: string[]; rate_limit?: unknown; quota?: unknown }, key: string) =>
  ({ id: row.id, api_key: key, api_key_name: row.name, created_at: row.created_at.toISOString(), expires_at: row.expires_at?.toISOString() ?? null, scopes: row.scopes, rate_limit: row.rate_limit ?? null, quota: row.quota ?? null })
const KeyIdParam = z.strictObject({ id: z.uuid() })
const UserKeyParams = z.strictObject({ id: z.uuid(), key_id: z.uuid() })

export function apiKeyRoutes(deps: { keys: ApiKeys; clock: Clock; db: Db }): Router {
  const r = Router()
  /**
   * A key's owner may tighten its limits, never loosen them (a larger or removed limit or quota): that is a
   * superuser's. Answers 403 NOT_SUPERUSER and returns true when the change is refused.
   */
  async function refuseLooser(res: Response, before: { rate_limit: ApiKeyRow['rate_limit']; quota: ApiKeyRow['quota'] }, change: { rate_limit?: ApiKeyRow['rate_limit']; quota?: ApiKeyRow['quota'] }): Promise<boolean> {
    if (!looserLimits(before, change)) return false
    const me = await userStore.findById(deps.db, identityOf(res).sub)
    if (me?.is_superuser) return false
    sendError(res, 'NOT_SUPERUSER', undefined, 'Only a superuser may raise or remove a key\'s rate limit or quota; its owner may lower them')
    return true
  }
  const actor = (req: Request, res: Response) => ({ userId: identityOf(res).sub, address: clientAddress(req) })

  r.post('/api-key', requireScope('keys:write'), async (req, res) => {
    const body = parse(CreateApiKeyRequest, req.body)
    if (refuseWiderKey(res, body.scopes ?? [])) return
    if (body.expires_in_days !== undefined && body.expires_at !== undefined) {
      throw new ValidationError([{ loc: ['body', 'expires_at'], msg: 'give expires_in_days or expires_at, not both' }])
    }
    const now = deps.clock.now()
    let expiresAt: Date | null = null
    if (body.expires_in_days !== undefined) expiresAt = new Date(now + body.expires_in_days * DAY_MS)
    if (body.expires_at !== undefined) {
      expiresAt = new Date(body.expires_at)
      if (expiresAt.getTime() <= now) throw new ValidationError([{ loc: ['body', 'expires_at'], msg: 'must be in the future' }])
    }
    const identity = identityOf(res)
    const { row, key } = await deps.keys.create(identity.sub, { name: body.name, expiresAt, scopes: body.scopes, rateLimit: body.rate_limit ?? null, quota: body.quota ?? null }, actor(req, res))
    res.set('cache-control', 'no-store').json(createdJson(row, key))
  })

  // Usable keys only (clients show this list as "your keys"); `include_revoked=true` adds revoked and expired ones.
  r.get('/api-keys', requireScope('keys:read'), async (req, res) => {
    const q = parse(ListApiKeysQuery, req.query, 'query')
    const userId = identityOf(res).sub
    const [keys, usage] = await Promise.all([q.include_revoked ? deps.keys.list(userId) : deps.keys.active(userId), deps.keys.usage(userId)])
    res.json(keys.map((k) => apiKeyJson(k, usage.get(k.id) ?? { day: 0, month: 0 })))
  })

  // The contract's revoke: the key this request came with, or the user's only key. Idempotent: with no active key
  // (or the key of this request already revoked) it answers the same 200.
  r.delete('/api-key', requireScope('keys:write'), async (req, res) => {
    const identity = identityOf(res)
    let keyId = identity.keyId
    if (!keyId) {
      const active = await deps.keys.active(identity.sub)
      if (active.length > 1) return sendError(res, 'KEY_AMBIGUOUS')
      keyId = active[0]?.id ?? null
    }
    if (keyId) await deps.keys.revoke(identity.sub, keyId, actor(req, res))
    res.json({ message: 'API key revoked successfully' })
  })

  // Stripe-style roll: a new secret now, the old one for a grace period the caller chooses.
  r.post('/api-keys/:id/roll', requireScope('keys:write'), async (req, res) => {
    const { id } = parse(KeyIdParam, req.params, 'path')
    const body = parse(RollApiKeyRequest, req.body ?? {})
    // The successor keeps the rolled key's scopes: a scoped caller may roll only keys no wider than itself.
    const target = (await deps.keys.active(identityOf(res).sub)).find((k) => k.id === id)
    if (target && refuseWiderKey(res, target.scopes)) return
    if (target && (await refuseLooser(res, target, body))) return
    const rolled = await deps.keys.roll(identityOf(res).sub, id, body.grace_period_seconds * 1000, actor(req, res), { rateLimit: body.rate_limit, quota: body.quota })
    if (!rolled) return sendError(res, 'NOT_FOUND', undefined, 'No such active API key')
    res.set('cache-control', 'no-store').json(createdJson(rolled.row, rolled.key))
  })

  // A key's own rate limit and quotas: its owner may lower them, a superuser may set them freely.
  r.patch('/api-keys/:id', requireScope('keys:write'), async (req, res) => {
    const { id } = parse(KeyIdParam, req.params, 'path')
    const body = parse(PatchApiKeyRequest, req.body ?? {})
    const target = (await deps.keys.active(identityOf(res).sub)).find((k) => k.id === id)
    if (!target) return sendError(res, 'NOT_FOUND', undefined, 'No such active API key')
    if (refuseWiderKey(res, target.scopes)) return
    if (await refuseLooser(res, target, body)) return
    const row = await deps.keys.setLimits(identityOf(res).sub, id, { rateLimit: body.rate_limit, quota: body.quota }, actor(req, res))
    if (!row) return sendError(res, 'NOT_FOUND', undefined, 'No such active API key')
    res.json(apiKeyJson(row))
  })

  // A superuser sets any user's key limits (a plan, a throttle on a misbehaving client), raising them included.
  r.patch('/users/:id/api-keys/:key_id', requireScope('users:admin'), async (req, res) => {
    const { id, key_id: keyId } = parse(UserKeyParams, req.params, 'path')
    const body = parse(PatchApiKeyRequest, req.body ?? {})
    const me = await userStore.findById(deps.db, identityOf(res).sub)
    if (!me?.is_active) return sendError(res, 'USER_INACTIVE')
    if (!me.is_superuser) return sendError(res, 'NOT_SUPERUSER')
    const row = await deps.keys.setLimits(id, keyId, { rateLimit: body.rate_limit, quota: body.quota }, actor(req, res))
    if (!row) return sendError(res, 'NOT_FOUND', undefined, 'No such active API key for this user')
    res.json(apiKeyJson(row))
  })

  r.delete('/api-keys/:id', requireScope('keys:write'), async (req, res) => {
    const { id } = parse(KeyIdParam, req.params, 'path')
    if (!(await deps.keys.revoke(identityOf(res).sub, id, actor(req, res)))) return sendError(res, 'NOT_FOUND', undefined, 'No such active API key')
    res.json({ message: 'API key revoked successfully' })
  })
  return r
}
