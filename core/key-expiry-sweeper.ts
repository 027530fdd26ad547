import { auditStore } from './audit-store.ts'
import type { Clock } from './clock.ts'
import type { InvalidationPublisher } from './invalidation-publisher.ts'

/**
 * Records `key.expired` in the audit trail for keys whose expiry has passed: once per key, even with several
 * instances sweeping (the UPDATE claims each key atomically). Expired keys are refused on every request
 * regardless; this only makes the event visible, and tells every cache (with the claim, in one transaction).
 */
export function keyExpirySweeper(deps: { clock: Clock; publisher: InvalidationPublisher; intervalMs?: number; onError?: (err: unknown) => void }) {
  async function sweep(): Promise<number> {
    const now = new Date(deps.clock.now())
    const claimed = await deps.publisher.commit(async (tx, announce) => {
      const { rows } = await tx.query<{ id: string; user_id: string; key_hash: string; expires_at: Date }>(
        `UPDATE api_keys SET expiry_recorded_at = $1
         WHERE expires_at <= $1 AND expiry_recorded_at IS NULL AND revoked_at IS NULL
         RETURNING id, user_id, key_hash, expires_at`,
        [now],
      )
      for (const k of rows) {
        await auditStore.record(tx, { event: 'key.expired', subjectUserId: k.user_id, keyId: k.id, detail: { expires_at: k.expires_at.toISOString() } }, now)
        announce({ kind: 'key', keyHash: k.key_hash })
      }
      return rows
    })
    return claimed.length
  }
  let timer: NodeJS.Timeout | undefined
  return {
    sweep,
    start() {
      timer = setInterval(() => { sweep().catch((err: unknown) => deps.onError?.(err)) }, deps.intervalMs ?? 60_000)
      timer.unref()
    },
    stop() {
      if (timer) clearInterval(timer)
    },
  }
}
