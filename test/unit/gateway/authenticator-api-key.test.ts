import t from 'tap'
import { apiKeyFormat, hashApiKey } from '../../../core/api-key-format.ts'
import { manualClock } from '../../../core/clock.ts'
import { credentialCache } from '../../../core/credential-cache.ts'
import type { KeyRecord } from '../../../core/key-store.ts'
import { apiKeyAuthenticator } from '../../../gateway/authenticator-api-key.ts'

function setup(records: KeyRecord[] = []) {
  const clock = manualClock()
  const lookups: string[] = []
  const used: string[] = []
  const auth = apiKeyAuthenticator({
    format: apiKeyFormat(),
    cache: credentialCache<KeyRecord>({ max: 100, ttlMs: 60_000, negativeTtlMs: 5_000 }),
    findByHash: async (hash) => {
      lookups.push(hash)
      return records.find((r) => r.keyHash === hash) ?? null
    },
    clock,
    recordUse: (id) => used.push(id),
  })
  return { auth, clock, lookups, used }
}

function record(key: string, patch: Partial<KeyRecord> = {}): KeyRecord {
  return { keyId: 'k1', keyHash: hashApiKey(key), userId: 'u1', username: 'alice', userActive: true, scopes: [], expiresAt: null, revokedAt: null, ...patch }
}

t.test('a malformed or mistyped key is rejected without any lookup', async (t) => {
  const { auth, lookups } = setup()
  const { key } = apiKeyFormat().generate()
  const flipped = key.slice(0, 20) + (key[20] === 'a' ? 'b' : 'a') + key.slice(21)
  for (const bad of [flipped, key.slice(0, -1), key + 'x', 'sk_live_short', apiKeyFormat('sk_test_').generate().key]) {
    t.same(await auth.authenticate(bad), { ok: false, code: 'KEY_MALFORMED' })
  }
  t.same(lookups, [], 'the store was never asked')
})

t.test('a known key is accepted once looked up, then served from the cache', async (t) => {
  const { key } = apiKeyFormat().generate()
  const { auth, lookups, used } = setup([record(key)])
  const first = await auth.authenticate(key)
  t.match(first, { ok: true, principal: { userId: 'u1', auth: 'api_key', keyId: 'k1', scopes: ['*'] } })
  await auth.authenticate(key)
  t.equal(lookups.length, 1, 'one lookup for two requests')
  t.same(used, ['k1', 'k1'], 'each use is recorded for last_used_at')
})

t.test('an unknown key is KEY_UNKNOWN and the absence is cached', async (t) => {
  const { auth, lookups } = setup()
  const { key } = apiKeyFormat().generate()
  t.same(await auth.authenticate(key), { ok: false, code: 'KEY_UNKNOWN' })
  t.same(await auth.authenticate(key), { ok: false, code: 'KEY_UNKNOWN' })
  t.equal(lookups.length, 1)
})

t.test('expiry, revocation and a deactivated user are checked on every hit', async (t) => {
  const clock = manualClock()
  const a = apiKeyFormat().generate().key
  const b = apiKeyFormat().generate().key
  const c = apiKeyFormat().generate().key
  const { auth, clock: c2 } = setup([
    record(a, { keyId: 'a', expiresAt: clock.now() + 1000 }),
    record(b, { keyId: 'b', revokedAt: clock.now() - 1 }),
    record(c, { keyId: 'c', userActive: false }),
  ])
  t.equal((await auth.authenticate(a)).ok, true, 'valid before its expiry')
  c2.advance(1000)
  t.same(await auth.authenticate(a), { ok: false, code: 'KEY_EXPIRED', keyId: 'a' }, 'expired once the clock passes expires_at, cached or not; the refusal names the key by id')
  t.same(await auth.authenticate(b), { ok: false, code: 'KEY_REVOKED', keyId: 'b' })
  t.same(await auth.authenticate(c), { ok: false, code: 'USER_INACTIVE', keyId: 'c' })
})

t.test('a key with scopes carries exactly those scopes', async (t) => {
  const { key } = apiKeyFormat().generate()
  const { auth } = setup([record(key, { scopes: ['documents:read'] })])
  t.match(await auth.authenticate(key), { ok: true, principal: { scopes: ['documents:read'] } })
})

t.test('a warm key is decided synchronously, without a promise', async (t) => {
  const { key } = apiKeyFormat().generate()
  const { auth } = setup([record(key)])
  t.ok((await auth.authenticate(key)).ok, 'the first request looks the key up')
  const warm = auth.authenticate(key)
  t.notOk(warm instanceof Promise, 'the second is answered from the in-process cache')
  t.match(warm, { ok: true, principal: { keyId: 'k1' } })
  t.equal((auth.authenticate(key) as { principal: unknown }).principal, (warm as { principal: unknown }).principal, 'one principal object per cached record')
})

t.test('a key revoked while its verdict is remembered is refused on the very next request', async (t) => {
  const { key } = apiKeyFormat().generate()
  const clock = manualClock()
  const rows = [record(key)]
  const cache = credentialCache<KeyRecord>({ max: 100, ttlMs: 60_000, negativeTtlMs: 5_000 })
  let lookups = 0
  const auth = apiKeyAuthenticator({ format: apiKeyFormat(), cache, clock, findByHash: async (hash) => { lookups++; return rows.find((r) => r.keyHash === hash) ?? null } })
  t.ok((await auth.authenticate(key)).ok)
  t.ok((await auth.authenticate(key)).ok, 'remembered and cached')
  rows[0] = record(key, { revokedAt: clock.now() })
  // The revocation names the key by hash, as the admin API announces it.
  cache.invalidate({ kind: 'key', keyHash: hashApiKey(key) }, (m) => (m.kind === 'key' ? `k:${m.keyHash}` : undefined))
  t.same(await auth.authenticate(key), { ok: false, code: 'KEY_REVOKED', keyId: 'k1' })
  t.equal(lookups, 2, 'the store was asked again')
})

t.test('expiry and a deactivated user are re-checked against the clock on every request of a remembered key', async (t) => {
  const { key } = apiKeyFormat().generate()
  const { auth, clock } = setup([record(key, { expiresAt: manualClock().now() + 1000 })])
  t.ok((await auth.authenticate(key)).ok)
  t.match(auth.authenticate(key), { ok: true }, 'warm and valid')
  clock.advance(1000)
  t.same(auth.authenticate(key), { ok: false, code: 'KEY_EXPIRED', keyId: 'k1' }, 'refused at its expiry, from the same cached record')
})

t.test('a different key with the same prefix is not confused with a remembered one', async (t) => {
  // Every key shares the `sk_live_` prefix; each is remembered by the whole raw key.
  const a = apiKeyFormat().generate().key
  const b = apiKeyFormat().generate().key
  const { auth, lookups } = setup([record(a, { keyId: 'a' })])
  t.match(await auth.authenticate(a), { ok: true, principal: { keyId: 'a' } })
  t.match(await auth.authenticate(a), { ok: true, principal: { keyId: 'a' } })
  t.same(await auth.authenticate(b), { ok: false, code: 'KEY_UNKNOWN' }, 'its own hash is looked up')
  t.same(lookups, [hashApiKey(a), hashApiKey(b)])
  const twin = a.slice(0, -7) + (a.at(-7) === 'a' ? 'b' : 'a') + a.slice(-6)
  t.same(await auth.authenticate(twin), { ok: false, code: 'KEY_MALFORMED' }, 'one character off: its checksum fails, though the key beside it is remembered')
  t.equal(lookups.length, 2, 'and it costs no lookup')
})

t.test('a bad checksum is refused without a lookup every time, never remembered', async (t) => {
  const { key } = apiKeyFormat().generate()
  const bad = key.slice(0, -1) + (key.at(-1) === 'a' ? 'b' : 'a')
  const { auth, lookups } = setup([record(key)])
  for (let i = 0; i < 3; i++) t.same(auth.authenticate(bad), { ok: false, code: 'KEY_MALFORMED' })
  t.same(lookups, [])
})

t.test('a cached record whose hash does not match the key is refused (the constant-time check still runs)', async (t) => {
  const { key } = apiKeyFormat().generate()
  const other = apiKeyFormat().generate().key
  // A store that answers a row of another key for this hash.
  const cache = credentialCache<KeyRecord>({ max: 100, ttlMs: 60_000, negativeTtlMs: 5_000 })
  const lying = apiKeyAuthenticator({ format: apiKeyFormat(), cache, clock: manualClock(), findByHash: async () => record(other) })
  t.same(await lying.authenticate(key), { ok: false, code: 'KEY_UNKNOWN' })
  t.same(await lying.authenticate(key), { ok: false, code: 'KEY_UNKNOWN' }, 'from the cache too')
})
