import type { Clock } from './clock.ts'
import type { Db } from './db.ts'
import { KeygateError } from './errors.ts'
import { publishAll, type InvalidationBus } from './invalidation.ts'
import { keyStore } from './key-store.ts'
import type { PasswordHasher } from './password.ts'
import { sessionStore } from './session-store.ts'
import { hashRefreshToken, type TokenService } from './tokens.ts'
import { auditStore } from './audit-store.ts'
import { userStore, type User, type UserProfile } from './user-store.ts'

/**
 * Accounts and login sessions: what the admin API and the CLI do to users. Every write that removes access
 * commits first, then publishes its invalidation; if publishing fails the call fails (the caller must know
 * some gateway may still accept the credential).
 */
export interface AccountDeps {
  db: Db
  clock: Clock
  hasher: PasswordHasher
  tokens: TokenService
  bus: InvalidationBus
  /** A spent refresh token presented again within this window is a retry, not a theft. */
  refreshReuseWindowMs?: number
}

export interface TokenPair {
  access_token: string
  refresh_token: string
  token_type: 'bearer'
  expires_in: number
}

/** Who asked and from where: recorded in the audit trail. */
export interface Actor { userId?: string | null; address?: string | null }

/** How a password replacement ends access: which session survives, whether API keys go too, what is audited. */
export interface ReplacePasswordOptions {
  keepSessionId: string | null
  revokeKeys: boolean
  event: 'password.changed' | 'password.reset' | 'password.set'
}

export function accounts(deps: AccountDeps) {
  const { db, clock, hasher, tokens, bus } = deps
  const now = () => new Date(clock.now())

  async function startSession(userId: string): Promise<TokenPair> {
    const sessionId = await sessionStore.create(db, userId, now())
    const refresh = tokens.newRefreshToken()
    await sessionStore.addRefreshToken(db, sessionId, refresh.hash, refresh.expiresAt, now())
    const access = tokens.issueAccess(userId, sessionId)
    return { access_token: access.token, refresh_token: refresh.token, token_type: 'bearer', expires_in: access.expiresIn }
  }

  /**
   * Replaces a user's password hash and ends access as `options` say, in one transaction; then audits and
   * publishes the invalidations. Password change, reset and a superuser's set-password all come through here.
   */
  async function replacePassword(userId: string, newHash: string, options: ReplacePasswordOptions, actor: Actor): Promise<void> {
    const ended = await db.transaction(async (tx) => {
      await userStore.setPassword(tx, userId, newHash, now())
      const sessions = await sessionStore.revokeAllOfUser(tx, userId, options.event.replace('.', '_'), now(), options.keepSessionId ?? undefined)
      const keys = options.revokeKeys ? await keyStore.revokeAllOfUser(tx, userId, now()) : []
      return { sessions, keys }
    })
    await auditStore.record(db, { event: options.event, actorUserId: actor.userId ?? userId, subjectUserId: userId, clientAddress: actor.address, detail: { sessions_ended: ended.sessions.length, keys_revoked: ended.keys.length } }, now())
    await publishAll(bus, [...ended.sessions.map((sessionId) => ({ kind: 'session' as const, sessionId })), ...ended.keys.map((keyHash) => ({ kind: 'key' as const, keyHash }))])
  }

  return {
    /** @throws KeygateError USER_EXISTS */
    async createUser(input: { username: string; password: string; email: string; profile?: Partial<UserProfile>; isSuperuser?: boolean }, actor: Actor = {}): Promise<User> {
      const passwordHash = await hasher.hash(input.password)
      const user = await userStore.create(db, { username: input.username, email: input.email, profile: input.profile, passwordHash, isSuperuser: input.isSuperuser }, now())
      await auditStore.record(db, { event: 'user.created', actorUserId: actor.userId ?? null, subjectUserId: user.id, clientAddress: actor.address }, now())
      return user
    },

    /**
     * Checks a password login. Unknown user, wrong password and inactive user all return null after the same
     * work (one scrypt), so neither the answer nor its timing tells them apart.
     */
    async login(login: { username: string } | { email: string }, password: string, actor: Actor): Promise<{ user: User; tokens: TokenPair } | null> {
      const found = await userStore.findForLogin(db, login)
      const ok = found ? await hasher.verify(password, found.password_hash) : await hasher.verifyDummy(password)
      if (!found || !ok || !found.is_active) {
        await auditStore.record(db, { event: 'login.failed', subjectUserId: found?.id ?? null, clientAddress: actor.address, detail: { reason: !found ? 'unknown_user' : !ok ? 'wrong_password' : 'inactive' } }, now())
        return null
      }
      const pair = await startSession(found.id)
      await userStore.recordLogin(db, found.id, now())
      await auditStore.record(db, { event: 'login.succeeded', actorUserId: found.id, subjectUserId: found.id, clientAddress: actor.address }, now())
      const { password_hash: _, ...user } = found
      return { user: { ...user, last_login_at: now() }, tokens: pair }
    },

    /** Rotates a refresh token. A spent token presented again (after the retry window) ends its whole session. */
    async refresh(refreshToken: string, actor: Actor): Promise<TokenPair | null> {
      const next = tokens.newRefreshToken()
      const result = await sessionStore.rotate(db, hashRefreshToken(refreshToken), next.hash, next.expiresAt, now(), deps.refreshReuseWindowMs ?? 10_000)
      if (result.outcome === 'invalid') return null
      if (result.outcome === 'reused') {
        await auditStore.record(db, { event: 'token.reuse_detected', subjectUserId: result.userId, clientAddress: actor.address, detail: { session_id: result.sessionId } }, now())
        await bus.publish({ kind: 'session', sessionId: result.sessionId })
        return null
      }
      const access = tokens.issueAccess(result.userId, result.sessionId)
      await auditStore.record(db, { event: 'token.refreshed', actorUserId: result.userId, subjectUserId: result.userId, clientAddress: actor.address }, now())
      return { access_token: access.token, refresh_token: next.token, token_type: 'bearer', expires_in: access.expiresIn }
    },

    /** Ends a login session: its refresh tokens and every access token issued for it. */
    async logout(userId: string, sessionId: string | null, actor: Actor): Promise<void> {
      if (sessionId) {
        await sessionStore.revoke(db, sessionId, 'logout', now())
        await bus.publish({ kind: 'session', sessionId })
      }
      await auditStore.record(db, { event: 'logout', actorUserId: userId, subjectUserId: userId, clientAddress: actor.address }, now())
    },

    /**
     * @returns false when `current` is wrong. Ends every other session of the user and revokes every API key:
     * whoever knew the old password may have minted keys with it.
     */
    async changePassword(userId: string, current: string, next: string, keepSessionId: string | null, actor: Actor): Promise<boolean> {
      const stored = await userStore.passwordHash(db, userId)
      if (stored === null || !(await hasher.verify(current, stored))) return false
      await replacePassword(userId, await hasher.hash(next), { keepSessionId, revokeKeys: true, event: 'password.changed' }, actor)
      return true
    },

    /**
     * A superuser sets a user's password: every session of that user ends (API keys stay valid).
     * @throws KeygateError NOT_FOUND
     */
    async setPassword(userId: string, next: string, actor: Actor): Promise<void> {
      if (!(await userStore.findById(db, userId))) throw new KeygateError('NOT_FOUND', 'no such user')
      await replacePassword(userId, await hasher.hash(next), { keepSessionId: null, revokeKeys: false, event: 'password.set' }, actor)
    },

    replacePassword,

    /**
     * Deactivates (every session and key of the user ends, everywhere) or reactivates a user.
     * @throws KeygateError NOT_FOUND
     */
    async setActive(userId: string, active: boolean, actor: Actor): Promise<User> {
      const { user, sessions, keys } = await db.transaction(async (tx) => {
        const u = await userStore.setActive(tx, userId, active, now())
        if (!u) throw new KeygateError('NOT_FOUND', 'no such user')
        if (active) return { user: u, sessions: [], keys: [] }
        return { user: u, sessions: await sessionStore.revokeAllOfUser(tx, userId, 'deactivated', now()), keys: await keyStore.revokeAllOfUser(tx, userId, now()) }
      })
      await auditStore.record(db, { event: active ? 'user.reactivated' : 'user.deactivated', actorUserId: actor.userId ?? null, subjectUserId: userId, clientAddress: actor.address, detail: active ? {} : { sessions_ended: sessions.length, keys_revoked: keys.length } }, now())
      if (!active) {
        // The user-wide message drops in-process entries; the per-credential ones also clear the shared cache.
        await publishAll(bus, [{ kind: 'user', userId }, ...sessions.map((sessionId) => ({ kind: 'session' as const, sessionId })), ...keys.map((keyHash) => ({ kind: 'key' as const, keyHash }))])
      }
      return user
    },

    startSession,
  }
}

export type Accounts = ReturnType<typeof accounts>
