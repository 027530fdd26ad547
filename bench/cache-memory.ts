import { createHash, randomUUID } from 'node:crypto'
import { credentialCache } from '../core/credential-cache.ts'
import type { KeyRecord } from '../core/key-store.ts'
import { keyCacheKey } from '../core/credential-keys.ts'

/**
 * `npm run bench:cache-memory`: the heap one cached API key costs a gateway. Fills the in-process credential
 * cache with BENCH_KEYS (default 100,000) records shaped as the gateway stores them (key hash as the cache key,
 * ids as UUIDs, one scope) and prints the heap growth per entry, after a forced GC (run with --expose-gc).
 */
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc (npm run bench:cache-memory does)')
const n = Number(process.env.BENCH_KEYS ?? 100_000)
const cache = credentialCache<KeyRecord>({ max: n, ttlMs: 3_600_000, negativeTtlMs: 5000 })

const heap = () => { gc!(); gc!(); return process.memoryUsage().heapUsed }
const before = heap()
for (let i = 0; i < n; i++) {
  const keyHash = createHash('sha256').update(`key ${i}`).digest('hex')
  const record: KeyRecord = { keyId: randomUUID(), keyHash, userId: randomUUID(), username: `user${i}`, userActive: true, scopes: ['read'], expiresAt: null, revokedAt: null }
  await cache.get(keyCacheKey(keyHash), async () => record)
}
const after = heap()
if (cache.size !== n) throw new Error(`expected ${n} entries, the cache holds ${cache.size}`)
const per = (after - before) / n
process.stdout.write(`${n} cached API keys: heap +${((after - before) / 1024 / 1024).toFixed(1)} MiB, ${per.toFixed(0)} bytes per key; KEYGATE_CACHE_MAX=100000 (the default) ≈ ${((per * 100_000) / 1024 / 1024).toFixed(0)} MiB\n`)
