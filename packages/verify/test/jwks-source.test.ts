import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { JwksUnavailableError, remoteKeySource, type PublicJwk } from '../src/jwks-source.ts'
import { generateKey } from './signer.ts'

const first = generateKey('EdDSA')
const second = generateKey('ES256')

/** A tiny JWKS endpoint on 127.0.0.1 whose answer the test changes; counts requests. */
async function jwksServer(t: Test) {
  const state = { keys: [first.publicJwk] as PublicJwk[], status: 200, body: undefined as string | undefined, requests: 0 }
  const server: Server = createServer((_req, res) => {
    state.requests++
    res.writeHead(state.status, { 'content-type': 'application/json' })
    res.end(state.body ?? JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json` }
}

/** What `promise` rejected with (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

/** A time the test moves by hand. */
function manualNow(start = 1_000_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

t.test('the key set is fetched on first use, not before, and then served from memory', async (t) => {
  const { state, url } = await jwksServer(t)
  const time = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: time.now })
  t.equal(state.requests, 0, 'nothing fetched at construction')
  const found = await source.get(first.kid)
  t.equal(found?.jwk.kid, first.kid)
  t.equal(found?.key.asymmetricKeyType, 'ed25519')
  t.equal(state.requests, 1)
  await source.get(first.kid)
  time.advance(3_600_000)
  await source.get(first.kid)
  t.equal(state.requests, 1, 'a known kid never causes a fetch')
})

t.test('an unknown kid refetches at most once per cooldown', async (t) => {
  const { state, url } = await jwksServer(t)
  const time = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: time.now })
  await source.get(first.kid)
  t.equal(state.requests, 1)
  t.equal(await source.get('unknown'), undefined)
  t.equal(state.requests, 1, 'within the cooldown of the first fetch: no refetch')
  time.advance(10_000)
  t.equal(await source.get('unknown'), undefined)
  t.equal(state.requests, 2, 'after the cooldown: one refetch')
  for (let i = 0; i < 20; i++) await source.get(`garbage-${i}`)
  time.advance(9_999)
  await source.get('unknown')
  t.equal(state.requests, 2, 'a stream of unknown kids inside the cooldown causes no more fetches')
  time.advance(1)
  await Promise.all(Array.from({ length: 10 }, (_, i) => source.get(`burst-${i}`)))
  t.equal(state.requests, 3, 'concurrent unknown kids share one refetch')
})

t.test('a key added by a rotation is found by the refetch its unknown kid causes', async (t) => {
  const { state, url } = await jwksServer(t)
  const time = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: time.now })
  await source.get(first.kid)
  state.keys = [second.publicJwk, first.publicJwk]
  time.advance(10_000)
  const found = await source.get(second.kid)
  t.equal(found?.jwk.kid, second.kid)
  t.equal(found?.key.asymmetricKeyType, 'ec')
  t.equal(state.requests, 2)
  t.ok(await source.get(first.kid), 'the older key still verifies')
})

t.test('when the endpoint starts failing after a good fetch, the last good set keeps serving', async (t) => {
  const { state, url } = await jwksServer(t)
  const time = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: time.now })
  await source.get(first.kid)
  state.status = 500
  time.advance(10_000)
  t.equal(await source.get('unknown'), undefined, 'an unknown kid is unknown, not an error')
  t.equal(state.requests, 2, 'the refetch was attempted')
  t.equal((await source.get(first.kid))?.jwk.kid, first.kid)
  state.status = 200
  state.body = '{"not":"a key set"}'
  time.advance(10_000)
  t.equal(await source.get('unknown'), undefined)
  t.equal(state.requests, 3)
  t.equal((await source.get(first.kid))?.jwk.kid, first.kid, 'a body without keys does not replace the good set')
})

t.test('with no good fetch ever, get throws JwksUnavailableError and retries once per cooldown', async (t) => {
  const { state, url } = await jwksServer(t)
  state.status = 503
  const clock = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: clock.now })
  const err = await rejection(source.get(first.kid))
  t.ok(err instanceof JwksUnavailableError)
  t.equal((err as JwksUnavailableError).code, 'IDENTITY_KEYS_UNAVAILABLE')
  t.equal((err as Error).name, 'JwksUnavailableError')
  t.ok((await rejection(source.get(first.kid))) instanceof JwksUnavailableError, 'still failing')
  t.equal(state.requests, 1, 'a burst of gets within the cooldown makes no new fetch')
  state.body = 'not json'
  state.status = 200
  clock.advance(10_000)
  t.ok((await rejection(source.get(first.kid))) instanceof JwksUnavailableError, 'an unparseable body counts as a failure')
  t.equal(state.requests, 2, 'after the cooldown it tries again')
  state.body = undefined
  clock.advance(10_000)
  t.equal((await source.get(first.kid))?.jwk.kid, first.kid, 'recovers once the endpoint answers')
})

t.test('an unreachable endpoint is JwksUnavailableError too', async (t) => {
  // A port that was just free: nothing listens there, so the connection is refused.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const source = remoteKeySource(`http://127.0.0.1:${port}/.well-known/jwks.json`, { timeoutMs: 2_000 })
  t.ok((await rejection(source.get(first.kid))) instanceof JwksUnavailableError)
})

t.test('a set older than maxAge is refreshed in the background, so a key published ahead is known before it signs', async (t) => {
  const { state, url } = await jwksServer(t)
  const clock = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 1_000, maxAgeMs: 60_000, now: clock.now })
  t.equal((await source.get(first.kid))?.jwk.kid, first.kid)
  state.keys = [first.publicJwk, second.publicJwk]
  clock.advance(60_000)
  t.equal((await source.get(first.kid))?.jwk.kid, first.kid, 'a known kid answers at once')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(state.requests, 2, 'and starts one refresh behind it')
  t.equal((await source.get(second.kid))?.jwk.kid, second.kid, 'the newly published key is known without a refetch on demand')
  t.equal(state.requests, 2)
})

t.test('gets for an unknown kid during a refetch wait for it instead of failing', async (t) => {
  const { state, url } = await jwksServer(t)
  const clock = manualNow()
  const source = remoteKeySource(url, { cooldownMs: 10_000, now: clock.now })
  await source.get(first.kid)
  state.keys = [first.publicJwk, second.publicJwk]
  clock.advance(10_000)
  const results = await Promise.all([source.get(second.kid), source.get(second.kid), source.get(second.kid)])
  t.same(results.map((r) => r?.jwk.kid), [second.kid, second.kid, second.kid], 'all three find the new key')
  t.equal(state.requests, 2, 'with one fetch between them')
})
