import { createHash, randomBytes } from 'node:crypto'
import type { Accounts, Actor } from './accounts.ts'
import { auditStore } from './audit-store.ts'
import type { Clock } from './clock.ts'
import type { Db } from './db.ts'
import type { Logger } from './logger.ts'
import type { Mailer } from './mailer.ts'
import type { PasswordHasher } from './password.ts'
import { resetTokenStore } from './reset-token-store.ts'
import { userStore } from './user-store.ts'

export interface PasswordResetDeps {
  db: Db
  clock: Clock
  hasher: PasswordHasher
  accounts: Pick<Accounts, 'resetPassword'>
  mailer: Mailer
  logger: Logger
  /** Lifetime of a reset token, ms (15 minutes). */
  ttlMs?: number
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

/**
 * Password reset by e-mail: a single-use token, stored as its hash, valid for 15 minutes. Confirming it sets the
 * new password and ends every session of the user (API keys stay valid), through `accounts.replacePassword`.
 * The token is in the mail only: never in a log, an error or the audit trail.
 */
export function passwordResets(deps: PasswordResetDeps) {
  const { db, clock, mailer, logger } = deps
  const ttlMs = deps.ttlMs ?? 15 * 60_000
  const now = () => new Date(clock.now())
  return {
    /**
     * Mails a token to the active user with this email, if there is one. Answers alike (and in similar time:
     * the mail is sent after the answer) whether or not there is.
     */
    async request(email: string, actor: Actor): Promise<void> {
      const user = await userStore.findForLogin(db, { email })
      if (!user || !user.is_active) return
      const token = `prt_${randomBytes(32).toString('base64url')}`
      const at = now()
      await resetTokenStore.create(db, hashToken(token), user.id, at, new Date(at.getTime() + ttlMs))
      await auditStore.record(db, { event: 'password_reset.requested', actorUserId: null, subjectUserId: user.id, clientAddress: actor.address }, at)
      const minutes = Math.round(ttlMs / 60_000)
      mailer.send({
        to: user.email,
        subject: 'Password reset',
        text: `A password reset was requested for ${user.username}.\n\nReset token: ${token}\n\nIt works once, within ${minutes} minutes. If you did not ask for it, ignore this message.\n`,
      }).catch((err: unknown) => logger.warn('password reset mail not sent', { user_id: user.id, error: String((err as Error)?.message ?? err) }))
    },

    /**
     * Spends `token` and sets `newPassword`. @returns false when the token is unknown, spent or expired.
     * @throws KeygateError PASSWORD_HASH_BUSY (the token is then not spent)
     */
    async confirm(token: string, newPassword: string, actor: Actor): Promise<boolean> {
      const tokenHash = hashToken(token)
      // Checked before hashing (an unknown token costs no scrypt), spent after it (a busy hasher spends no token).
      if (!(await resetTokenStore.usable(db, tokenHash, now()))) return false
      const newHash = await deps.hasher.hash(newPassword)
      // Spent in the new password's transaction: a confirm that fails on the way leaves the token as it was.
      return deps.accounts.resetPassword((tx) => resetTokenStore.spend(tx, tokenHash, now()), newHash, actor)
    },
  }
}

export type PasswordResets = ReturnType<typeof passwordResets>
