import t from 'tap'
import { batchLoader } from '../../../core/batch-loader.ts'

/** A loadMany whose queries are answered by hand, so a test decides when each one returns. */
function manualStore(values: Record<string, number>) {
  const queries: Array<{ keys: readonly string[]; answer(): void; fail(err: Error): void }> = []
  const loadMany = (keys: readonly string[]) => new Promise<Map<string, number>>((resolve, reject) => {
    queries.push({
      keys,
      answer: () => resolve(new Map(keys.filter((k) => k in values).map((k) => [k, values[k]!]))),
      fail: reject,
    })
  })
  return { queries, loadMany }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

t.test('lookups started in the same turn go in one query, each answered with its own value', async (t) => {
  const store = manualStore({ a: 1, b: 2 })
  const load = batchLoader({ loadMany: store.loadMany, maxInFlight: 2, maxBatch: 10 })
  const answers = Promise.all([load('a'), load('b'), load('nope')])
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a', 'b', 'nope']])
  store.queries[0]!.answer()
  t.same(await answers, [1, 2, null], 'a key the store does not have is null')
})

t.test('the same key asked twice in one batch is asked once, and both lookups get its value', async (t) => {
  const store = manualStore({ a: 1 })
  const load = batchLoader({ loadMany: store.loadMany, maxInFlight: 1, maxBatch: 10 })
  const answers = Promise.all([load('a'), load('a')])
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a']])
  store.queries[0]!.answer()
  t.same(await answers, [1, 1])
})

t.test('no more than maxInFlight queries are out: keys asked meanwhile wait and go together in the next', async (t) => {
  const store = manualStore({ a: 1, b: 2, c: 3, d: 4 })
  const load = batchLoader({ loadMany: store.loadMany, maxInFlight: 1, maxBatch: 10 })
  const first = load('a')
  await turn()
  const later = Promise.all([load('b'), load('c')])
  await turn()
  const last = load('d')
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a']], 'the one query allowed is out; nothing else is sent')
  store.queries[0]!.answer()
  t.equal(await first, 1)
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a'], ['b', 'c', 'd']], 'everything that waited goes in one query')
  store.queries[1]!.answer()
  t.same(await later, [2, 3])
  t.equal(await last, 4)
})

t.test('a batch holds at most maxBatch keys; the rest go in the queries that follow, first asked first sent', async (t) => {
  const store = manualStore({})
  const load = batchLoader({ loadMany: store.loadMany, maxInFlight: 2, maxBatch: 2 })
  const all = Promise.all(['a', 'b', 'c', 'd', 'e'].map((k) => load(k)))
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a', 'b'], ['c', 'd']], 'two queries in flight, two keys each')
  store.queries[0]!.answer()
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a', 'b'], ['c', 'd'], ['e']])
  store.queries[1]!.answer()
  store.queries[2]!.answer()
  t.same(await all, [null, null, null, null, null])
})

t.test('a query that fails fails every lookup of its batch with its error, and the next batch is still sent', async (t) => {
  const store = manualStore({ c: 3 })
  const load = batchLoader({ loadMany: store.loadMany, maxInFlight: 1, maxBatch: 10 })
  const failed = [load('a'), load('b')]
  await turn()
  const next = load('c')
  const down = Object.assign(new Error('database unavailable'), { code: 'DATABASE_UNAVAILABLE' })
  store.queries[0]!.fail(down)
  for (const p of failed) await t.rejects(p, { code: 'DATABASE_UNAVAILABLE' })
  await turn()
  t.same(store.queries.map((q) => q.keys), [['a', 'b'], ['c']])
  store.queries[1]!.answer()
  t.equal(await next, 3)
})

t.test('a loadMany that throws instead of rejecting fails its batch the same way, and frees its place', async (t) => {
  let calls = 0
  const load = batchLoader<string, number>({
    loadMany: (keys) => {
      if (calls++ === 0) throw new Error('bad statement')
      return Promise.resolve(new Map(keys.map((k) => [k, 7])))
    },
    maxInFlight: 1,
    maxBatch: 10,
  })
  await t.rejects(load('a'), /bad statement/)
  t.equal(await load('b'), 7, 'the next lookup gets a query of its own')
  t.equal(calls, 2)
})
