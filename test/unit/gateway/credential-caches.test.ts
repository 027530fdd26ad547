import t from 'tap'
import { createMetrics } from '../../../core/metrics.ts'
import { credentialCaches } from '../../../gateway/credential-caches.ts'

const env = { KEYGATE_CACHE_MAX: 100, KEYGATE_CACHE_TTL_MS: 60_000, KEYGATE_CACHE_NEGATIVE_TTL_MS: 5_000, KEYGATE_REDIS_PREFIX: 'unused:' }

t.test('every lookup of both caches is counted by layer and result in keygate_cache_lookups_total when /metrics is read', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const caches = credentialCaches({ env, metrics })
  const record = { userId: 'u1' }
  for (let i = 0; i < 3; i++) await caches.keyCache.get('key-a', async () => record as never)
  t.equal(caches.keyCache.peek('key-a'), record as never, 'a warm key is answered by the in-process layer')
  await caches.sessionCache.get('session-a', async () => null)
  const text = await metrics.registry.metrics()
  const count = (layer: string, result: string) => Number(new RegExp(`keygate_cache_lookups_total\\{layer="${layer}",result="${result}"\\} (\\d+)`).exec(text)?.[1])
  t.equal(count('l1', 'hit'), 3, 'two gets and a peek answered in-process')
  t.equal(count('l1', 'miss'), 2, 'the first get of each cache')
  t.equal(count('db', 'load'), 2)
  const again = await metrics.registry.metrics()
  t.equal(Number(/keygate_cache_lookups_total\{layer="l1",result="hit"\} (\d+)/.exec(again)?.[1]), 3, 'a second read counts nothing twice')
})
