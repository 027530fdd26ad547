import type { Clock } from './clock.ts'
import type { Queryable } from './db.ts'
import { keyStore } from './key-store.ts'

/**
 * Keeps `last_used_at` fresh without a database write per request: uses are collected in memory and written
 * in one statement every `intervalMs` (and on close). A failed write keeps the batch for the next round.
 */
export interface KeyUsageRecorder {
  record(keyId: string): void
  flush(): Promise<void>
  close(): Promise<void>
}

export function keyUsageRecorder(deps: { db: Queryable; clock: Clock; intervalMs?: number; onError?: (err: unknown) => void }): KeyUsageRecorder {
  // Milliseconds, not Dates: `record` runs on every request with an API key.
  let pending = new Map<string, number>()
  let flushing: Promise<void> | undefined
  async function flush(): Promise<void> {
    if (flushing) return flushing
    if (pending.size === 0) return
    const batch = pending
    pending = new Map()
    flushing = keyStore.touch(deps.db, new Map([...batch].map(([id, at]) => [id, new Date(at)]))).catch((err: unknown) => {
      for (const [id, at] of batch) if (!pending.has(id)) pending.set(id, at)
      deps.onError?.(err)
    }).finally(() => { flushing = undefined })
    return flushing
  }
  const timer = setInterval(() => void flush(), deps.intervalMs ?? 10_000)
  timer.unref()
  return {
    record(keyId) {
      pending.set(keyId, deps.clock.now())
    },
    flush,
    async close() {
      clearInterval(timer)
      await flushing
      await flush()
    },
  }
}
