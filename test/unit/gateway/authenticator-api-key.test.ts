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
