import type { NextFunction, Request, Response } from 'express'
import type { z } from 'zod'
import type { ErrorCode } from '../core/error-codes.ts'
import { KeygateError, ValidationError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { problemResponse } from '../core/problem.ts'
import type { Queryable } from '../core/db.ts'
import { PROFILE_FIELDS, userStore, type User } from '../core/user-store.ts'
import { CLIENT_ADDRESS_PROOF_HEADER, type ClientAddressProof } from '../core/client-address-proof.ts'

/** Parses `value` with `schema`; every problem is reported with its location (`["body", "name"]`). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path' = 'body'): z.output<S> {
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (result.success) return result.data
  const errors = result.error.issues.flatMap((issue) => {
    const nested = (issue as { errors?: z.core.$ZodIssue[][] }).errors
    // A union (login by username or by email) reports the branch closest to what was sent.
    const chosen = issue.code === 'invalid_union' && nested?.length ? nested.reduce((a, b) => (b.length < a.length ? b : a)) : [issue]
    return chosen.map((i) => ({ loc: [where, ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))], msg: i.message }))
  })
  throw new ValidationError(errors)
}

/** The problem response for `code` on an Express response (built by `core/problem.ts`). */
export function sendError(res: Response, code: ErrorCode, extra?: Readonly<Record<string, unknown>>, detail?: string): void {
  const p = problemResponse(code, { extra, detail, instance: res.req.headers['x-request-id'] as string | undefined })
  res.status(p.status).set(p.headers).send(p.body)
}

/** Express 5 forwards rejected promises here: KeygateErrors keep their code, body-parser errors get theirs. */
export function errorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof KeygateError) return sendError(res, err.code, err.extra)
    const type = (err as { type?: string }).type
    if (type === 'entity.too.large') return sendError(res, 'BODY_TOO_LARGE')
    if (type === 'entity.parse.failed') return sendError(res, 'BODY_INVALID_JSON')
    if (type === 'charset.unsupported' || type === 'encoding.unsupported') return sendError(res, 'UNSUPPORTED_MEDIA_TYPE')
    // A body that does not decode as its Content-Encoding says (gzip that is not gzip): the body parser marks
    // the decompression error 400 without a type. It is a broken body, like broken JSON, not our fault.
    if (type === undefined && isBodyParserClientError(err)) return sendError(res, 'BODY_INVALID_JSON')
    logger.error('admin request failed', { error: String((err as Error)?.message ?? err) })
    sendError(res, 'INTERNAL')
  }
}

/** An error the body parser raised over the request body's bytes (made by http-errors: status 400, `expose` set). */
function isBodyParserClientError(err: unknown): boolean {
  const e = err as { status?: unknown; expose?: unknown }
  return e.status === 400 && e.expose === true
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString())

/** A user as the contract's UserResponse: every field present, `api_key_name` from `apiKeyName`. */
export function userJson(u: User, apiKeyName: string | null) {
  const profile = Object.fromEntries(PROFILE_FIELDS.map((f) => [f, u[f]])) as Pick<User, (typeof PROFILE_FIELDS)[number]>
  return {
    id: u.id, email: u.email, username: u.username, ...profile,
    is_active: u.is_active, is_verified: u.is_verified, is_superuser: u.is_superuser,
    api_key_name: apiKeyName,
    created_at: iso(u.created_at)!, updated_at: iso(u.updated_at)!, last_login_at: iso(u.last_login_at),
  }
}

/** UserResponses of `users`, each with the name of its usable key (one query for all of them). */
export async function usersJson(db: Queryable, now: Date, users: readonly User[]) {
  const names = await userStore.activeKeyNames(db, users.map((u) => u.id), now)
  return users.map((u) => userJson(u, names.get(u.id) ?? null))
}

export async function oneUserJson(db: Queryable, now: Date, user: User) {
  return (await usersJson(db, now, [user]))[0]!
}

export function apiKeyJson(k: { id: string; name: string; display: string; created_at: Date; last_used_at: Date | null; expires_at: Date | null; revoked_at: Date | null; scopes: string[]; rate_limit?: unknown; quota?: unknown }, usage?: { day: number; month: number }) {
  return { id: k.id, api_key_name: k.name, api_key: k.display, created_at: iso(k.created_at)!, last_used_at: iso(k.last_used_at), expires_at: iso(k.expires_at), revoked_at: iso(k.revoked_at), scopes: k.scopes, rate_limit: k.rate_limit ?? null, quota: k.quota ?? null, ...(usage ? { usage } : {}) }
}

/**
 * The caller's address as the gateway established it (the admin API is reached only through the gateway, which
 * drops any such header a client sends); the socket's peer when called directly. In the gateway's process, the
 * header has already been dropped unless it came with this process's proof (see `verifyClientAddress`).
 */
export function clientAddress(req: Request): string | null {
  const stated = req.headers['x-keygate-client-address']
  return (typeof stated === 'string' && stated) || req.socket.remoteAddress || null
}

/**
 * Drops `x-keygate-client-address` unless it carries this process's proof: the in-process admin API's loopback
 * port is reachable by any local process, which must not choose the address its login attempts are counted
 * under (or are audited from).
 */
export function verifyClientAddress(proof: Pick<ClientAddressProof, 'verify'>) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const stated = req.headers['x-keygate-client-address']
    const given = req.headers[CLIENT_ADDRESS_PROOF_HEADER]
    if (stated !== undefined && !(typeof stated === 'string' && typeof given === 'string' && proof.verify(stated, given))) delete req.headers['x-keygate-client-address']
    next()
  }
}
