import t from 'tap'
import { credentialCache } from '../../../core/credential-cache.ts'
import type { Invalidation } from '../../../core/invalidation.ts'

interface Rec { userId: string; v: number }

const OPTIONS = { max: 100, ttlMs: 60_000, negativeTtlMs: 5_000 }
const keyOf = (m: Invalidation) => (m.kind === 'key' ? `k:${m.keyHash}` : m.kind === 'session' ? `s:${m.sessionId}` : undefined)

/** A loader that counts its calls and answers `value`. */
function loader<V>(value: V) {
  const fn = async () => { fn.calls++; return value }
  fn.calls = 0
  return fn
}

/** A promise resolved from outside, to hold a load in flight. */
function deferred<V>() {
  let resolve!: (v: V) => void
  let reject!: (err: Error) => void
  const promise = new Promise<V>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

t.test('a loaded value is served from the cache on the next get', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  const load = loader<Rec | null>({ userId: 'u1', v: 1 })
  t.same(await cache.get('k:a', load), { userId: 'u1', v: 1 })
  t.same(await cache.get('k:a', load), { userId: 'u1', v: 1 })
  t.equal(load.calls, 1)
  t.same(cache.stats, { hits: 1, misses: 1, loads: 1 })
  t.equal(cache.size, 1)
})

t.test('a known absence (null) is cached and answered as null, apart from a miss', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  const load = loader<Rec | null>(null)
  t.equal(await cache.get('k:absent', load), null)
  t.equal(await cache.get('k:absent', load), null, 'null, not undefined')
  t.equal(load.calls, 1, 'the second get is a hit')
  t.equal(cache.stats.hits, 1)
  const other = loader<Rec | null>({ userId: 'u1', v: 2 })
  t.same(await cache.get('k:other', other), { userId: 'u1', v: 2 }, 'a never-seen key is a miss that loads')
  t.equal(other.calls, 1)
})

t.test('with a negative TTL of 0, absences are not cached but values still are', async (t) => {
  const cache = credentialCache<Rec>({ ...OPTIONS, negativeTtlMs: 0 })
  const absent = loader<Rec | null>(null)
  await cache.get('k:absent', absent)
  await cache.get('k:absent', absent)
  t.equal(absent.calls, 2)
  const present = loader<Rec | null>({ userId: 'u1', v: 1 })
  await cache.get('k:present', present)
  await cache.get('k:present', present)
  t.equal(present.calls, 1)
})

t.test('concurrent gets for one key share a single load', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  const gate = deferred<Rec | null>()
  let calls = 0
  const load = () => { calls++; return gate.promise }
  const pending = Array.from({ length: 10 }, () => cache.get('k:a', load))
  gate.resolve({ userId: 'u1', v: 1 })
  const values = await Promise.all(pending)
  t.equal(calls, 1)
  t.ok(values.every((v) => v?.v === 1))
  t.equal(cache.stats.loads, 1)
})

t.test('a load that an invalidation overtook is not stored: the value is loaded again', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  const first = deferred<Rec | null>()
  const answers = [() => first.promise, async () => ({ userId: 'u1', v: 2 })]
  let calls = 0
  const load = () => answers[calls++]!()
  const pending = cache.get('k:a', load)
  cache.invalidate({ kind: 'key', keyHash: 'a' }, keyOf)
  first.resolve({ userId: 'u1', v: 1 })
  t.same(await pending, { userId: 'u1', v: 2 }, 'the in-flight get answers with the value loaded after the invalidation')
  t.equal(calls, 2)
  t.same(await cache.get('k:a', async () => { throw new Error('must be a hit') }), { userId: 'u1', v: 2 }, 'the fresh value is what is cached')
})

t.test('when invalidations keep landing during loads, nothing stale is stored and the next get loads again', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  let calls = 0
  const load = async () => {
    calls++
    // Every load is overtaken by an invalidation (a revocation storm).
    cache.invalidate({ kind: 'key', keyHash: 'a' }, keyOf)
    return { userId: 'u1', v: calls }
  }
  await cache.get('k:a', load)
  t.equal(calls, 2, 'one retry, then give up storing')
  t.equal(cache.size, 0, 'nothing stored')
  await cache.get('k:a', async () => { calls++; return { userId: 'u1', v: 99 } })
  t.equal(calls, 3, 'the next get loads again')
  t.equal(cache.size, 1)
})

t.test('an invalidation drops the named entry only', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  await cache.get('k:a', loader<Rec | null>({ userId: 'u1', v: 1 }))
  await cache.get('k:b', loader<Rec | null>({ userId: 'u1', v: 2 }))
  await cache.get('s:1', loader<Rec | null>({ userId: 'u1', v: 3 }))
  cache.invalidate({ kind: 'key', keyHash: 'a' }, keyOf)
  t.equal(cache.size, 2)
  const reload = loader<Rec | null>({ userId: 'u1', v: 10 })
  t.same(await cache.get('k:a', reload), { userId: 'u1', v: 10 })
  t.equal(reload.calls, 1)
  cache.invalidate({ kind: 'session', sessionId: '1' }, keyOf)
  t.equal(cache.size, 2)
})

t.test('a user-wide invalidation drops every entry of that user and keeps the others', async (t) => {
  for (const count of [1, 2, 7]) {
    const cache = credentialCache<Rec>(OPTIONS)
    for (let i = 0; i < count; i++) await cache.get(`k:u1-${i}`, loader<Rec | null>({ userId: 'u1', v: i }))
    await cache.get('k:u2', loader<Rec | null>({ userId: 'u2', v: 0 }))
    await cache.get('k:none', loader<Rec | null>(null))
    for (let i = 0; i < count; i++) await cache.get(`s:u1-${i}`, loader<Rec | null>({ userId: 'u1', v: i }))
    cache.invalidate({ kind: 'user', userId: 'u1' }, keyOf)
    t.equal(cache.size, 2, `${count} entries each side: only u2 and the absence remain`)
    const u2 = loader<Rec | null>({ userId: 'u2', v: 5 })
    t.same(await cache.get('k:u2', u2), { userId: 'u2', v: 0 })
    t.equal(u2.calls, 0)
    const u1 = loader<Rec | null>({ userId: 'u1', v: 5 })
    await cache.get('k:u1-0', u1)
    t.equal(u1.calls, 1, 'u1 loads again')
  }
})

t.test('clear drops everything and a load in flight during it is not stored as it was', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  await cache.get('k:a', loader<Rec | null>({ userId: 'u1', v: 1 }))
  await cache.get('k:b', loader<Rec | null>(null))
  cache.clear()
  t.equal(cache.size, 0)
  const first = deferred<Rec | null>()
  let calls = 0
  const pending = cache.get('k:c', () => (++calls === 1 ? first.promise : Promise.resolve({ userId: 'u1', v: 2 })))
  cache.clear()
  first.resolve({ userId: 'u1', v: 1 })
  t.same(await pending, { userId: 'u1', v: 2 })
  t.equal(calls, 2)
})

t.test('max 0 disables caching: every get loads', async (t) => {
  const cache = credentialCache<Rec>({ ...OPTIONS, max: 0 })
  const load = loader<Rec | null>({ userId: 'u1', v: 1 })
  await cache.get('k:a', load)
  await cache.get('k:a', load)
  await cache.get('k:a', load)
  t.equal(load.calls, 3)
  t.equal(cache.size, 0)
  t.equal(cache.stats.hits, 0)
})

t.test('a ttl of 0 disables caching too', async (t) => {
  const cache = credentialCache<Rec>({ ...OPTIONS, ttlMs: 0 })
  const load = loader<Rec | null>({ userId: 'u1', v: 1 })
  await cache.get('k:a', load)
  await cache.get('k:a', load)
  t.equal(load.calls, 2)
})

t.test('a failing load is not cached and its error reaches every waiting caller', async (t) => {
  const cache = credentialCache<Rec>(OPTIONS)
  const gate = deferred<Rec | null>()
  const load = () => gate.promise
  const a = cache.get('k:a', load)
  const b = cache.get('k:a', load)
  gate.reject(new Error('database down'))
  await t.rejects(a, { message: 'database down' })
  await t.rejects(b, { message: 'database down' })
  const ok = loader<Rec | null>({ userId: 'u1', v: 1 })
  t.same(await cache.get('k:a', ok), { userId: 'u1', v: 1 })
  t.equal(ok.calls, 1)
})
