import { LRUCache } from 'lru-cache'
import type { Invalidation } from './invalidation.ts'

/** Anything cached per credential names its user, so a user-wide invalidation can find it. */
export interface Cacheable { userId: string }

export interface CacheStats { hits: number; misses: number; loads: number }

/**
 * The shared second layer (Redis). `get` answers `undefined` for a miss (or a tombstone: a revocation is in
 * progress, ask the database), `null` for a cached absence. `set` writes only where nothing is (a tombstone
 * blocks it), so a lookup that raced a revocation cannot put the old record back for every instance.
 * Any method may throw: the layer is skipped, never trusted blindly.
 */
export interface SharedCache {
  get(key: string): Promise<string | null | undefined>
  setIfAbsent(key: string, value: string | null, ttlMs: number): Promise<void>
}

export type CacheLayer = 'l1' | 'l2'
export type CacheResult = 'hit' | 'miss' | 'error' | 'load'

export interface CredentialCache<V extends Cacheable> {
  /**
   * Read-through: in-process LRU, then the shared layer (when there is one), then `load()` (the database).
   * Results are stored with a positive or negative TTL; a known absence (`null`) is kept apart from a miss
   * (`undefined`). Concurrent misses for one key share one load. A load that raced an invalidation is not
   * stored and is done again, so a revocation can never be undone by a lookup that was already in flight.
   */
  get(key: string, load: () => Promise<V | null>): Promise<V | null>
  /**
   * The in-process layer alone, synchronously: the cached value (`null`: a cached absence), or `undefined` when
   * it holds nothing for `key` (then `get`). An answer counts as an L1 hit, as `get`'s would; a miss counts
   * nothing, since the `get` that follows counts it. Lets a warm credential be decided without a promise.
   */
  peek(key: string): V | null | undefined
  /** Drops what `message` names. */
  invalidate(message: Invalidation, keyOf: (m: Invalidation) => string | undefined): void
  clear(): void
  readonly size: number
  readonly stats: CacheStats
}

type Entry<V> = { value: V | null }

export interface CredentialCacheOptions {
  max: number
  ttlMs: number
  negativeTtlMs: number
  shared?: SharedCache
  /** TTL of shared entries: a backstop, invalidation removes them sooner. */
  sharedTtlMs?: number
  onLookup?(layer: CacheLayer | 'db', result: CacheResult): void
}

export function credentialCache<V extends Cacheable>(options: CredentialCacheOptions): CredentialCache<V> {
  const enabled = options.max > 0 && options.ttlMs > 0
  const lru = new LRUCache<string, Entry<V>>({ max: Math.max(1, options.max), ttl: Math.max(1, options.ttlMs) })
  const inflight = new Map<string, Promise<V | null>>()
  const stats: CacheStats = { hits: 0, misses: 0, loads: 0 }
  const note = options.onLookup ?? (() => {})
  // Bumped by every invalidation; a load that sees it move stores nothing.
  let generation = 0

  const keep = (key: string, value: V | null) => {
    if (enabled && (value !== null || options.negativeTtlMs > 0)) lru.set(key, { value }, { ttl: value === null ? options.negativeTtlMs : options.ttlMs })
  }

  async function fromShared(key: string): Promise<V | null | undefined> {
    if (!options.shared) return undefined
    try {
      const raw = await options.shared.get(key)
      note('l2', raw === undefined ? 'miss' : 'hit')
      return raw === undefined ? undefined : raw === null ? null : (JSON.parse(raw) as V)
    } catch {
      note('l2', 'error')
      return undefined
    }
  }

  async function loadFresh(key: string, load: () => Promise<V | null>): Promise<V | null> {
    for (let attempt = 0; ; attempt++) {
      const seen = generation
      const shared = await fromShared(key)
      if (shared !== undefined && seen === generation) {
        keep(key, shared)
        return shared
      }
      stats.loads++
      note('db', 'load')
      const value = await load()
      if (seen === generation) {
        keep(key, value)
        if (options.shared) {
          const ttl = value === null ? options.negativeTtlMs : (options.sharedTtlMs ?? options.ttlMs * 5)
          if (ttl > 0) await options.shared.setIfAbsent(key, value === null ? null : JSON.stringify(value), ttl).catch(() => note('l2', 'error'))
        }
        return value
      }
      if (attempt >= 1) return value
    }
  }

  return {
    peek(key) {
      const hit = enabled ? lru.get(key) : undefined
      if (hit === undefined) return undefined
      stats.hits++
      note('l1', 'hit')
      return hit.value
    },
    async get(key, load) {
      const hit = enabled ? lru.get(key) : undefined
      if (hit !== undefined) {
        stats.hits++
        note('l1', 'hit')
        return hit.value
      }
      stats.misses++
      note('l1', 'miss')
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
