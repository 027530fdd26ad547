import { LRUCache } from 'lru-cache'
import type { Clock } from '../core/clock.ts'
import { TUNABLES } from '../config/tunables.ts'

/**
 * Bounds the database lookups a client address can cause with made-up API keys. A key with a valid checksum
 * passes the format check, and each distinct one misses every cache (the negative entry is per key hash), so a
 * flood of them was a flood of database lookups that slowed every client. Each lookup that found no key counts
 * against the address, in a fixed window; past `max`, that address's keys are looked up only in the caches
 * (keys already cached keep working) and an uncached one is refused with 429 KEY_LOOKUPS_LIMITED until the
 * window ends. Counted in this process.
 */
export interface UnknownKeyLimiter {
  /**
   * Counts a lookup by `address` up front (so concurrent lookups cannot all pass the check) and says whether it
   * may go to the database; call `found` when it found a key.
   */
  reserve(address: string): boolean
  /** Gives back the lookup of a key that exists: only unknown keys stay counted. */
  found(address: string): void
}

export const UNKNOWN_KEY_WINDOW_MS = TUNABLES.caches.unknownKeyWindowMs

export function unknownKeyLimiter(deps: { max: number; clock: Clock; maxAddresses?: number }): UnknownKeyLimiter {
  const counters = new LRUCache<string, { count: number; resetAt: number }>({ max: deps.maxAddresses ?? 100_000 })
  const live = (address: string) => {
    const c = counters.get(address)
    if (c && c.resetAt <= deps.clock.now()) {
      counters.delete(address)
      return undefined
    }
    return c
  }
  return {
    reserve(address) {
      let c = live(address)
      if (!c) counters.set(address, (c = { count: 0, resetAt: deps.clock.now() + UNKNOWN_KEY_WINDOW_MS }))
      if (c.count >= deps.max) return false
      c.count++
      return true
    },
    found(address) {
      const c = live(address)
      if (c && c.count > 0) c.count--
    },
  }
}
