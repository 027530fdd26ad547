import type { ApiKeyFormat } from './api-key-format.ts'
import { auditStore } from './audit-store.ts'
import type { Clock } from './clock.ts'
import type { Db } from './db.ts'
import type { InvalidationPublisher } from './invalidation-publisher.ts'
import { keyStore, type ApiKeyRow } from './key-store.ts'
import type { Actor } from './accounts.ts'
import type { KeyQuota } from './key-limits.ts'
import type { RateLimitSpec } from './rate-limit.ts'
import { quotaPeriod } from './rate-limit.ts'

/** A key's own limits as given to create, roll or change: undefined leaves one as it is, null removes it. */
export interface KeyLimitsInput { rateLimit?: RateLimitSpec | null; quota?: KeyQuota | null }

/**
 * API key lifecycle: create (the secret leaves here once), list (never a secret), revoke (everywhere). A roll
 * and a revocation commit their change, their audit row and their announcement together (see
 * `invalidation-publisher.ts`).
 */
export interface ApiKeyDeps {
  db: Db
  clock: Clock
  format: ApiKeyFormat
  publisher: InvalidationPublisher
  maxActivePerUser: number
}

export function apiKeys(deps: ApiKeyDeps) {
  const { db, clock, format, publisher } = deps
  const now = () => new Date(clock.now())
  return {
    /** @throws KeygateError KEY_LIMIT_REACHED */
    async create(userId: string, input: { name: string; expiresAt?: Date | null; scopes?: string[] } & KeyLimitsInput, actor: Actor): Promise<{ row: ApiKeyRow; key: string }> {
      const { key, hash, display } = format.generate()
      const row = await keyStore.create(db, { userId, name: input.name, hash, display, scopes: input.scopes ?? [], expiresAt: input.expiresAt ?? null, maxActive: deps.maxActivePerUser, rateLimit: input.rateLimit, quota: input.quota }, now())
      await auditStore.record(db, { event: 'key.created', actorUserId: actor.userId ?? userId, subjectUserId: userId, keyId: row.id, clientAddress: actor.address }, now())
      return { row, key }
    },

    /**
     * Issues a successor for a key; the old one works for `graceMs` more. Null when no such active key.
     * @throws KeygateError KEY_LIMIT_REACHED (a grace period while another key already stands beyond the limit),
     *   INVALIDATION_FAILED (rolled, but not every instance could be told yet)
     */
    async roll(userId: string, keyId: string, graceMs: number, actor: Actor, limits: KeyLimitsInput = {}): Promise<{ row: ApiKeyRow; key: string } | null> {
      const { key, hash, display } = format.generate()
      const rolled = await publisher.commit(async (tx, announce) => {
        const r = await keyStore.roll(tx, { userId, keyId, hash, display, graceMs, maxActive: deps.maxActivePerUser, ...limits }, now())
        if (!r) return null
        await auditStore.record(tx, { event: 'key.rolled', actorUserId: actor.userId ?? userId, subjectUserId: userId, keyId, clientAddress: actor.address, detail: { new_key_id: r.row.id, grace_seconds: Math.round(graceMs / 1000) } }, now())
        // Cached copies of the old key must learn its new expiry (or revocation) now, not after their TTL.
        announce({ kind: 'key', keyHash: r.oldHash })
        return r
      })
      return rolled && { row: rolled.row, key }
    },

    list: (userId: string) => keyStore.listByUser(db, userId),

    /**
     * Changes an active key's own rate limit or quotas; every gateway's cached copy learns it at once. Null when
     * the user has no such active key.
     * @throws KeygateError INVALIDATION_FAILED (changed, but not every instance could be told yet)
     */
    async setLimits(userId: string, keyId: string, limits: KeyLimitsInput, actor: Actor): Promise<ApiKeyRow | null> {
      return publisher.commit(async (tx, announce) => {
        const changed = await keyStore.setLimits(tx, userId, keyId, limits, now())
        if (!changed) return null
        await auditStore.record(tx, { event: 'key.limits_changed', actorUserId: actor.userId ?? userId, subjectUserId: userId, keyId, clientAddress: actor.address, detail: { rate_limit: changed.row.rate_limit ? `${changed.row.rate_limit.limit}/${changed.row.rate_limit.window_seconds}s` : null, daily_quota: changed.row.quota?.daily ?? null, monthly_quota: changed.row.quota?.monthly ?? null } }, now())
        announce({ kind: 'key', keyHash: changed.keyHash })
        return changed.row
      })
    },

    /** Requests counted against each of the user's keys today and this month (UTC), as the gateways summed them. */
    async usage(userId: string): Promise<Map<string, { day: number; month: number }>> {
      const t = clock.now()
      return keyStore.usageByUser(db, userId, quotaPeriod('day', t).id, `${quotaPeriod('month', t).id}-01`)
    },

    /** Active keys of a user that have not expired. */
    async active(userId: string): Promise<ApiKeyRow[]> {
      const t = clock.now()
      return (await keyStore.listByUser(db, userId)).filter((k) => k.revoked_at === null && (k.expires_at === null || k.expires_at.getTime() > t))
    },

    /**
     * @returns false when the user has no such active key (another user's key id included).
     * @throws KeygateError INVALIDATION_FAILED (revoked, but not every instance could be told yet)
     */
    async revoke(userId: string, keyId: string, actor: Actor): Promise<boolean> {
      return publisher.commit(async (tx, announce) => {
        const revoked = await keyStore.revoke(tx, userId, keyId, now())
        if (!revoked) return false
        await auditStore.record(tx, { event: 'key.revoked', actorUserId: actor.userId ?? userId, subjectUserId: userId, keyId, clientAddress: actor.address }, now())
        announce({ kind: 'key', keyHash: revoked.key_hash })
        return true
      })
    },
  }
}

export type ApiKeys = ReturnType<typeof apiKeys>
