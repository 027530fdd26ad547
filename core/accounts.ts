import type { Clock } from './clock.ts'
import type { Db, Queryable } from './db.ts'
import { KeygateError } from './errors.ts'
import type { Announce, InvalidationPublisher } from './invalidation-publisher.ts'
import { keyStore } from './key-store.ts'
import type { PasswordHasher } from './password.ts'
import { sessionStore } from './session-store.ts'
import { hashRefreshToken, type TokenService } from './tokens.ts'
import { auditStore } from './audit-store.ts'
import { userStore, type User, type UserProfile } from './user-store.ts'

/**
 * Accounts and login sessions: what the admin API and the CLI do to users. Every write that removes access
 * commits its change, its audit row and its invalidations in one transaction (`publisher.commit`), then
 * publishes them; if publishing fails the call fails with INVALIDATION_FAILED (the caller must know some gateway
 * may still accept the credential for a moment), and the outbox drain publishes them later.
 */
export interface AccountDeps {
  db: Db
  clock: Clock
  hasher: PasswordHasher
  tokens: TokenService
  publisher: InvalidationPublisher
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

/** What a password replacement or a deactivation ended (audited, and told to the operator). */
export type Ended = { sessions_ended: number; keys_revoked: number }

/** How a password replacement ends access: which session survives, whether API keys go too, what is audited. */
export interface ReplacePasswordOptions {
  keepSessionId: string | null
  revokeKeys: boolean
  event: 'password.changed' | 'password.reset' | 'password.set'
}

export function accounts(deps: AccountDeps) {
  const { db, clock, hasher, tokens, publisher } = deps
  const now = () => new Date(clock.now())

  /**
   * Ends every session (but `keepSessionId`) and, unless `revokeKeys` is false, every API key of a user in `tx`,
   * and announces each (password change, reset and set, deactivation).
   */
  async function endAllOf(tx: Queryable, announce: Announce, userId: string, reason: string, options: { keepSessionId?: string; revokeKeys?: boolean } = {}): Promise<Ended> {
    const sessions = await sessionStore.revokeAllOfUser(tx, userId, reason, now(), options.keepSessionId)
    const keys = options.revokeKeys === false ? [] : await keyStore.revokeAllOfUser(tx, userId, now())
    for (const sessionId of sessions) announce({ kind: 'session', sessionId })
    for (const keyHash of keys) announce({ kind: 'key', keyHash })
    return { sessions_ended: sessions.length, keys_revoked: keys.length }
  }

  async function startSession(userId: string): Promise<TokenPair> {
    const sessionId = await sessionStore.create(db, userId, now())
    const refresh = tokens.newRefreshToken()
    await sessionStore.addRefreshToken(db, sessionId, refresh.hash, refresh.expiresAt, now())
    const access = tokens.issueAccess(userId, sessionId)
    return { access_token: access.token, refresh_token: refresh.token, token_type: 'bearer', expires_in: access.expiresIn }
  }

  /**
   * Replaces a user's password hash, ends access as `options` say and audits it, in the caller's transaction
   * (whose commit publishes the invalidations). Password change, reset and a superuser's set-password all come
   * through here.
   */
  async function replaceIn(tx: Queryable, announce: Announce, userId: string, newHash: string, options: ReplacePasswordOptions, actor: Actor): Promise<Ended> {
    await userStore.setPassword(tx, userId, newHash, now())
    const ended = await endAllOf(tx, announce, userId, options.event.replace('.', '_'), { keepSessionId: options.keepSessionId ?? undefined, revokeKeys: options.revokeKeys })
    await auditStore.record(tx, { event: options.event, actorUserId: actor.userId ?? userId, subjectUserId: userId, clientAddress: actor.address, detail: ended }, now())
    return ended
  }

  /** `replaceIn` in a transaction of its own. */
  async function replacePassword(userId: string, newHash: string, options: ReplacePasswordOptions, actor: Actor): Promise<Ended> {
    return publisher.commit((tx, announce) => replaceIn(tx, announce, userId, newHash, options, actor))
  }

  /**
   * A password reset: `spend` spends the reset token and names its user (null: unknown, spent or expired), in
   * the same transaction as the new password, so a reset that fails after it (the database gone mid-way) leaves
   * the token usable. Every session of the user ends; API keys stay valid. @returns false when `spend` found none.
   */
  async function resetPassword(spend: (tx: Queryable) => Promise<string | null>, newHash: string, actor: Actor): Promise<boolean> {
    return publisher.commit(async (tx, announce) => {
      const userId = await spend(tx)
      if (!userId) return false
      await replaceIn(tx, announce, userId, newHash, { keepSessionId: null, revokeKeys: false, event: 'password.reset' }, actor)
      return true
    })
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

    /**
     * Rotates a refresh token. A spent token presented again (after the retry window) ends its whole session.
     * @throws KeygateError INVALIDATION_FAILED (a reused token's session ended, but not every instance was told yet)
     */
    async refresh(refreshToken: string, actor: Actor): Promise<TokenPair | null> {
      const next = tokens.newRefreshToken()
      const result = await publisher.commit(async (tx, announce) => {
        const r = await sessionStore.rotate(tx, hashRefreshToken(refreshToken), next.hash, next.expiresAt, now(), deps.refreshReuseWindowMs ?? 10_000)
        if (r.outcome === 'reused') {
          await auditStore.record(tx, { event: 'token.reuse_detected', subjectUserId: r.userId, clientAddress: actor.address, detail: { session_id: r.sessionId } }, now())
          announce({ kind: 'session', sessionId: r.sessionId })
        } else if (r.outcome === 'rotated') {
          await auditStore.record(tx, { event: 'token.refreshed', actorUserId: r.userId, subjectUserId: r.userId, clientAddress: actor.address }, now())
        }
        return r
      })
      if (result.outcome !== 'rotated') return null
      const access = tokens.issueAccess(result.userId, result.sessionId)
      return { access_token: access.token, refresh_token: next.token, token_type: 'bearer', expires_in: access.expiresIn }
    },

    /**
     * Ends a login session: its refresh tokens and every access token issued for it.
     * @throws KeygateError INVALIDATION_FAILED
     */
    async logout(userId: string, sessionId: string | null, actor: Actor): Promise<void> {
      await publisher.commit(async (tx, announce) => {
        if (sessionId) {
          await sessionStore.revoke(tx, sessionId, 'logout', now())
          announce({ kind: 'session', sessionId })
        }
        await auditStore.record(tx, { event: 'logout', actorUserId: userId, subjectUserId: userId, clientAddress: actor.address }, now())
      })
    },

    /**
     * "Log out everywhere": ends every login session of the user, this one included (its refresh tokens and every
     * access token issued for it, on every instance); API keys stay valid (they are revoked one by one).
     * @throws KeygateError INVALIDATION_FAILED
     */
    async logoutEverywhere(userId: string, actor: Actor): Promise<Ended> {
      return publisher.commit(async (tx, announce) => {
        const ended = await endAllOf(tx, announce, userId, 'logout_everywhere', { revokeKeys: false })
        await auditStore.record(tx, { event: 'logout.everywhere', actorUserId: userId, subjectUserId: userId, clientAddress: actor.address, detail: ended }, now())
        return ended
      })
    },

    /**
     * @returns false when `current` is wrong. Ends every other session of the user and revokes every API key:
     * whoever knew the old password may have minted keys with it.
     * @throws KeygateError INVALIDATION_FAILED
     */
    async changePassword(userId: string, current: string, next: string, keepSessionId: string | null, actor: Actor): Promise<boolean> {
      const stored = await userStore.passwordHash(db, userId)
      if (stored === null || !(await hasher.verify(current, stored))) return false
      await replacePassword(userId, await hasher.hash(next), { keepSessionId, revokeKeys: true, event: 'password.changed' }, actor)
      return true
    },

    /**
     * Sets a password without the current one: a superuser (`PATCH /users/{id}`) ends every session of the user,
     * its API keys stay valid; an operator (`keygate users set-password`) may revoke the keys too.
     * @throws KeygateError NOT_FOUND, INVALIDATION_FAILED
     */
    async setPassword(userId: string, next: string, actor: Actor, options: { revokeKeys?: boolean } = {}): Promise<Ended> {
      if (!(await userStore.findById(db, userId))) throw new KeygateError('NOT_FOUND', 'no such user')
      return replacePassword(userId, await hasher.hash(next), { keepSessionId: null, revokeKeys: options.revokeKeys ?? false, event: 'password.set' }, actor)
    },

    replacePassword,
    resetPassword,

    /**
     * Deactivates (every session and key of the user ends, everywhere) or reactivates a user.
     * @throws KeygateError NOT_FOUND, INVALIDATION_FAILED (deactivated, but not every instance was told yet)
     */
    async setActive(userId: string, active: boolean, actor: Actor): Promise<User> {
      return publisher.commit(async (tx, announce) => {
        const u = await userStore.setActive(tx, userId, active, now())
        if (!u) throw new KeygateError('NOT_FOUND', 'no such user')
        if (active) {
          await auditStore.record(tx, { event: 'user.reactivated', actorUserId: actor.userId ?? null, subjectUserId: userId, clientAddress: actor.address }, now())
          return u
        }
        // The user-wide message drops in-process entries; the per-credential ones also clear the shared cache.
        announce({ kind: 'user', userId })
        const ended = await endAllOf(tx, announce, userId, 'deactivated')
        await auditStore.record(tx, { event: 'user.deactivated', actorUserId: actor.userId ?? null, subjectUserId: userId, clientAddress: actor.address, detail: ended }, now())
        return u
      })
    },

    startSession,
  }
}

export type Accounts = ReturnType<typeof accounts>
