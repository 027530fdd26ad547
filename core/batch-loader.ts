/**
 * Lookups by key coalesced into few queries. A key asked for joins the next query; at most `maxInFlight` queries
 * are out at once, and keys asked for while they are join the one that follows, so batches grow with the load:
 * one key per query when lookups are rare, up to `maxBatch` when many cold credentials arrive together (a new
 * instance, Redis emptied). A burst of cold API keys that took one database round trip each, queued behind the
 * pool, then takes a few.
 *
 * `loadMany` answers every key it was given (a key absent from its map has no value: `null`). When it throws,
 * every lookup of that batch fails with the same error (the database being down is the batch's fault, not a key's).
 */
export interface BatchLoaderOptions<K, V> {
  loadMany(keys: readonly K[]): Promise<ReadonlyMap<K, V>>
  /** Queries out at once; keep it under the pool's size, so the pool serves other statements meanwhile. */
  maxInFlight: number
  /** Keys per query at most. */
  maxBatch: number
}

interface Waiter<V> { resolve(value: V | null): void; reject(err: unknown): void }

export function batchLoader<K, V>(options: BatchLoaderOptions<K, V>): (key: K) => Promise<V | null> {
  const maxInFlight = Math.max(1, options.maxInFlight)
  const maxBatch = Math.max(1, options.maxBatch)
  // Insertion order: the keys asked for first go first.
  let pending = new Map<K, Array<Waiter<V>>>()
  let inFlight = 0
  let scheduled = false

  function schedule(): void {
    if (scheduled || inFlight >= maxInFlight || pending.size === 0) return
    scheduled = true
    // After the promise jobs already queued: lookups that start in the same turn (the answers of one read from
    // Redis, say) reach the same query.
    void Promise.resolve().then(() => process.nextTick(dispatch))
  }

  function dispatch(): void {
    scheduled = false
    while (inFlight < maxInFlight && pending.size > 0) {
      let batch: Map<K, Array<Waiter<V>>>
      if (pending.size <= maxBatch) {
        batch = pending
        pending = new Map()
      } else {
        batch = new Map()
        for (const [key, waiters] of pending) {
          if (batch.size === maxBatch) break
          batch.set(key, waiters)
          pending.delete(key)
        }
      }
      inFlight++
      run(batch)
    }
  }

  function run(batch: Map<K, Array<Waiter<V>>>): void {
    let loading: Promise<ReadonlyMap<K, V>>
    try {
      loading = options.loadMany([...batch.keys()])
    } catch (err) {
      loading = Promise.reject(err)
    }
    loading.then(
      (found) => {
        for (const [key, waiters] of batch) {
          const value = found.get(key) ?? null
          for (const w of waiters) w.resolve(value)
        }
      },
      (err: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(err)
      },
    ).finally(() => {
      inFlight--
      schedule()
    })
  }

  return (key) => new Promise<V | null>((resolve, reject) => {
    const waiters = pending.get(key)
    if (waiters) waiters.push({ resolve, reject })
    else pending.set(key, [{ resolve, reject }])
    schedule()
  })
}
