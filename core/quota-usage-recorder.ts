import type { Clock } from './clock.ts'
import type { Queryable } from './db.ts'
import { keyStore } from './key-store.ts'
import { quotaPeriod } from './rate-limit.ts'

/**
 * The summary of quota counts in PostgreSQL (`api_key_usage`, shown as `usage` in `GET /api-keys`): each gateway
 * adds the requests it counted against keys' quotas, per day and month, every `intervalMs` in one statement (and
 * on close). The budget itself is decided by the rate counter (Redis, or in-process); this is what the listing
 * reads. A failed write keeps the batch for the next round.
 */
export interface QuotaUsageRecorder {
  record(keyId: string): void
  flush(): Promise<void>
  close(): Promise<void>
}

export function quotaUsageRecorder(deps: { db: Queryable; clock: Clock; intervalMs: number; onError?: (err: unknown) => void }): QuotaUsageRecorder {
  // `keyId day-start month-start` → requests.
  let pending = new Map<string, number>()
  let flushing: Promise<void> | undefined
  async function flush(): Promise<void> {
    if (flushing) return flushing
    if (pending.size === 0) return
    const batch = pending
    pending = new Map()
    const rows = [...batch].flatMap(([k, n]) => {
      const [keyId, day, month] = k.split(' ') as [string, string, string]
      return [{ keyId, period: 'day' as const, start: day, requests: n }, { keyId, period: 'month' as const, start: month, requests: n }]
    })
    flushing = keyStore.addUsage(deps.db, rows).catch((err: unknown) => {
      for (const [k, n] of batch) pending.set(k, (pending.get(k) ?? 0) + n)
      deps.onError?.(err)
    }).finally(() => { flushing = undefined })
    return flushing
  }
  const timer = setInterval(() => void flush(), deps.intervalMs)
  timer.unref()
  return {
    record(keyId) {
      const now = deps.clock.now()
      const k = `${keyId} ${quotaPeriod('day', now).id} ${quotaPeriod('month', now).id}-01`
      pending.set(k, (pending.get(k) ?? 0) + 1)
    },
    flush,
    async close() {
      clearInterval(timer)
      await flushing
      await flush()
    },
  }
}
