import type { NextFunction, Request, Response } from 'express'
import { sendError } from './http.ts'
import { identityOf } from './identity.ts'

/**
 * Scopes bind on the admin API too. A login token and an unscoped API key (scopes `["*"]` in the identity) act
 * with their user's full powers; a scoped API key acts on the admin API only within the admin scopes it holds:
 *
 * | scope | operations |
 * |---|---|
 * | `keys:read` | `GET /api-keys` |
 * | `keys:write` | `POST /api-key`, `DELETE /api-key`, `DELETE /api-keys/{id}`, `POST /api-keys/{id}/roll` |
 * | `profile:write` | `PUT /me` |
 * | `users:admin` | `GET /users`, `POST /users`, `PATCH /users/{id}` (a superuser's key) |
 * | `audit:read` | `GET /audit` |
 * | `sessions:write` | `POST /logout-all` |
 *
 * `GET /me`, `GET /sessions` and `POST /logout` take any credential. A key never creates or rolls a key wider than itself: every
 * scope of the new key must be one the caller holds, and a scoped caller cannot create an unscoped key.
 */
export type AdminScope = 'keys:read' | 'keys:write' | 'profile:write' | 'users:admin' | 'audit:read' | 'sessions:write'

/** True when `held` (the identity's scopes) includes every one of `wanted`; `*` holds them all. */
export function holdsAll(held: readonly string[], wanted: readonly string[]): boolean {
  return held.includes('*') || wanted.every((s) => held.includes(s))
}

/** Scopes of a key as the identity states them: an unscoped key (stored `[]`) holds `*`. */
export const effectiveScopes = (stored: readonly string[]): readonly string[] => (stored.length ? stored : ['*'])

/** Express middleware: 403 SCOPE_MISSING unless the caller's credential holds `scope`. */
export function requireScope(scope: AdminScope) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (!holdsAll(identityOf(res).scopes, [scope])) return sendError(res, 'SCOPE_MISSING', { missing_scopes: [scope] })
    next()
  }
}

/**
 * 403 SCOPE_MISSING (and true) when the caller may not hold a key with `scopes` (stored form: `[]` = unscoped):
 * a key is never created or rolled wider than the credential that asks.
 */
export function refuseWiderKey(res: Response, scopes: readonly string[]): boolean {
  const held = identityOf(res).scopes
  const wanted = effectiveScopes(scopes)
  if (holdsAll(held, wanted)) return false
  sendError(res, 'SCOPE_MISSING', { missing_scopes: wanted.filter((s) => !held.includes(s)) })
  return true
}
