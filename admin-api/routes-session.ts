import { Router, type Request, type Response } from 'express'
import type { Accounts } from '../core/accounts.ts'
import type { AttemptLimiter } from '../core/attempt-limiter.ts'
import type { Db } from '../core/db.ts'
import { KeygateError } from '../core/errors.ts'
import { userStore } from '../core/user-store.ts'
import { canonicalIdentifier, isEmailIdentifier } from '../core/identifier.ts'
import { clientAddress, oneUserJson, parse, sendError, userJson } from './http.ts'
import { identityOf } from './identity.ts'
import { requireScope } from './scopes.ts'
import { ChangePasswordRequest, LoginRequest, RefreshRequest, RegisterRequest, UpdateMeRequest } from './schemas.ts'

export interface SessionRouteDeps {
  db: Db
  /** Failed logins per username and per client address. */
  loginLimiter: AttemptLimiter
  accounts: Accounts
  allowRegistration: boolean
  refreshTtlSec: number
  clock: { now(): number }
}

const COOKIE = 'refresh_token'
const COOKIE_PATH = '/api/v1/auth'

function setRefreshCookie(res: Response, token: string, maxAgeSec: number): void {
  res.append('set-cookie', `${COOKIE}=${token}; Path=${COOKIE_PATH}; Max-Age=${maxAgeSec}; HttpOnly; Secure; SameSite=Strict`)
}

function cookieValue(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return undefined
}

/**
 * Reserves one attempt under each of `keys`; when any is over its limit, answers 429 RATE_LIMITED with
 * Retry-After and returns true (the attempts reserved stay counted: they were attempts).
 */
async function refuseOverLimit(res: Response, limiter: AttemptLimiter, keys: readonly string[], detail?: string): Promise<boolean> {
  const wait = Math.max(...(await Promise.all(keys.map((k) => limiter.reserve(k)))))
  if (wait === 0) return false
  res.set('retry-after', String(wait))
  sendError(res, 'RATE_LIMITED', undefined, detail)
  return true
}

/** Public routes: reached through the gateway without a credential. */
export function publicSessionRoutes(deps: SessionRouteDeps): Router {
  const r = Router()
  const actor = (req: Request) => ({ address: clientAddress(req) })
  const now = () => new Date(deps.clock.now())

  r.post('/login', async (req, res) => {
    const body = parse(LoginRequest, req.body)
    // `username` wins when both are set; whatever holds an `@` is an email, wherever it was sent (one login box).
    // Looked up and counted in one canonical form (see identifier.ts): no spelling is counted as one user and
    // logged in as another.
    const identifier = canonicalIdentifier((body.username ?? body.email)!)
    const login = isEmailIdentifier(identifier) ? { email: identifier } : { username: identifier }
    // A user is counted once under its canonical username, whether the attempt named it or its email.
    const subject = await userStore.canonicalUsername(deps.db, login)
    const limits = [`addr:${clientAddress(req) ?? 'unknown'}`, `user:${subject ?? identifier}`]
    // Counted before the password is checked (and given back on success), atomically: a locked-out guesser
    // costs no scrypt and learns nothing, and a burst of concurrent guesses gets no more checks than the limit.
    if (await refuseOverLimit(res, deps.loginLimiter, limits)) return
    const result = await deps.accounts.login(login, body.password, actor(req))
    if (!result) return sendError(res, 'LOGIN_FAILED')
    await Promise.all(limits.map((k) => deps.loginLimiter.release(k)))
    setRefreshCookie(res, result.tokens.refresh_token, deps.refreshTtlSec)
    res.json({ ...result.tokens, user: await oneUserJson(deps.db, now(), result.user) })
  })

  r.post('/refresh', async (req, res) => {
    const body = parse(RefreshRequest, req.body ?? {})
    const token = body.refresh_token ?? cookieValue(req, COOKIE)
    if (!token) return sendError(res, 'REFRESH_INVALID')
    const pair = await deps.accounts.refresh(token, actor(req))
    if (!pair) return sendError(res, 'REFRESH_INVALID')
    setRefreshCookie(res, pair.refresh_token, deps.refreshTtlSec)
    res.json(pair)
  })

  r.post('/register', async (req, res) => {
    if (!deps.allowRegistration) return sendError(res, 'REGISTRATION_DISABLED')
    const body = parse(RegisterRequest, req.body)
    const { username, password, email, ...profile } = body
    const user = await deps.accounts.createUser({ username, password, email, profile }, actor(req))
    const tokens = await deps.accounts.startSession(user.id)
    setRefreshCookie(res, tokens.refresh_token, deps.refreshTtlSec)
    res.status(201).json({ ...tokens, user: userJson(user, null) })
  })
  return r
}

/** Routes that need the gateway's identity. */
export function sessionRoutes(deps: SessionRouteDeps): Router {
  const r = Router()
  const actor = (req: Request, res: Response) => ({ userId: identityOf(res).sub, address: clientAddress(req) })
  const now = () => new Date(deps.clock.now())

  async function currentUser(res: Response) {
    const user = await userStore.findById(deps.db, identityOf(res).sub)
    if (!user || !user.is_active) throw new KeygateError('USER_INACTIVE')
    return user
  }

  r.get('/me', async (_req, res) => {
    res.json(await oneUserJson(deps.db, now(), await currentUser(res)))
  })

  r.put('/me', requireScope('profile:write'), async (req, res) => {
    const body = parse(UpdateMeRequest, req.body)
    const user = await currentUser(res)
    const updated = await userStore.updateProfile(deps.db, user.id, body, now())
    res.json(await oneUserJson(deps.db, now(), updated!))
  })

  r.post('/logout', async (req, res) => {
    const identity = identityOf(res)
    await deps.accounts.logout(identity.sub, identity.sessionId, actor(req, res))
    res.append('set-cookie', `${COOKIE}=; Path=${COOKIE_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict`)
    res.json({ message: 'Logged out successfully' })
  })

  r.post('/change-password', async (req, res) => {
    const identity = identityOf(res)
    if (identity.auth !== 'jwt') return sendError(res, 'JWT_REQUIRED')
    const body = parse(ChangePasswordRequest, req.body)
    // A stolen login token must not become a way to guess the password: failures are counted per user, like logins.
    const limits = [`password:${identity.sub}`]
    if (await refuseOverLimit(res, deps.loginLimiter, limits, 'Too many failed password changes; retry later')) return
    const ok = await deps.accounts.changePassword(identity.sub, body.current_password, body.new_password, identity.sessionId, actor(req, res))
    if (!ok) return sendError(res, 'PASSWORD_INCORRECT')
    await Promise.all(limits.map((k) => deps.loginLimiter.release(k)))
    res.json({ message: 'Password changed successfully' })
  })

  r.delete('/account', async (req, res) => {
    const identity = identityOf(res)
    if (identity.auth !== 'jwt') return sendError(res, 'JWT_REQUIRED')
    await deps.accounts.setActive(identity.sub, false, actor(req, res))
    res.json({ message: 'Account deactivated successfully' })
  })
  return r
}
