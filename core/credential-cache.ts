import { LRUCache } from 'lru-cache'
import type { Invalidation } from './invalidation.ts'

/** Anything cached per credential names its user, so a user-wide invalidation can find it. */
export interface Cacheable { userId: string }

export interface CacheStats { hits: number; misses: number; loads: number }

export interface CredentialCache<V extends Cacheable> {
  /**
   * Read-through: the cached value, or `load()`'s result stored with a positive or negative TTL. A known
   * absence (`null`) is cached apart from a miss (`undefined` in the LRU). Concurrent misses for one key share
   * one load. A load that raced an invalidation is not stored and is done again, so a revocation can never
   * be undone by a lookup that was already in flight.
   */
  get(key: string, load: () => Promise<V | null>): Promise<V | null>
  /** Drops what `message` names. */
  invalidate(message: Invalidation, keyOf: (m: Invalidation) => string | undefined): void
  clear(): void
  readonly size: number
  readonly stats: CacheStats
}

type Entry<V> = { value: V | null }

export function credentialCache<V extends Cacheable>(options: { max: number; ttlMs: number; negativeTtlMs: number }): CredentialCache<V> {
  const enabled = options.max > 0 && options.ttlMs > 0
  const lru = new LRUCache<string, Entry<V>>({ max: Math.max(1, options.max), ttl: Math.max(1, options.ttlMs) })
  const inflight = new Map<string, Promise<V | null>>()
  const stats: CacheStats = { hits: 0, misses: 0, loads: 0 }
  // Bumped by every invalidation; a load that sees it move stores nothing.
  let generation = 0

  async function loadFresh(key: string, load: () => Promise<V | null>): Promise<V | null> {
    for (let attempt = 0; ; attempt++) {
      const seen = generation
      stats.loads++
      const value = await load()
      if (seen === generation) {
        if (enabled && (value !== null || options.negativeTtlMs > 0)) {
          lru.set(key, { value }, { ttl: value === null ? options.negativeTtlMs : options.ttlMs })
        }
        return value
      }
      if (attempt >= 1) return value
    }
  }

  return {
    async get(key, load) {
      const hit = enabled ? lru.get(key) : undefined
      if (hit !== undefined) {
        stats.hits++
        return hit.value
      }
      stats.misses++
      let p = inflight.get(key)
      if (!p) {
        p = loadFresh(key, load).finally(() => inflight.delete(key))
        inflight.set(key, p)
      }
      return p
    },
    invalidate(message, keyOf) {
      generation++
      const key = keyOf(message)
      if (key !== undefined) lru.delete(key)
      if (message.kind === 'user') {
        for (const [k, entry] of lru.entries()) if (entry.value?.userId === message.userId) lru.delete(k)
      }
    },
    clear() {
      generation++
      lru.clear()
    },
    get size() { return lru.size },
    stats,
  }
}
