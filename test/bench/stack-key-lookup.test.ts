import t from 'tap'
import { stackKeyLookup } from '../../bench/stack-key-lookup.ts'
import { hashApiKey } from '../../core/api-key-format.ts'
import { manualClock } from '../../core/clock.ts'

const row = (over: Partial<{ is_active: boolean; revoked_at: Date | null; expires_at: Date | null }> = {}) => ({ user_id: 'u1', is_active: true, revoked_at: null, expires_at: null, ...over })

t.test('the stack rows\' key lookup asks the database once per key hash, then answers from its LRU until the entry ages out', async (t) => {
  const clock = manualClock()
  const asked: unknown[][] = []
  const lookup = stackKeyLookup({ now: clock.now, ttlMs: 60_000, query: async (_text, values) => { asked.push(values); return { rows: values[0] === hashApiKey('sk_known') ? [row()] : [] } } })
  t.equal(await lookup.userOf('sk_known'), 'u1')
  t.equal(await lookup.userOf('sk_known'), 'u1')
  t.same(asked, [[hashApiKey('sk_known')]], 'looked up by SHA-256 hex, once')
  t.equal(await lookup.userOf('sk_unknown'), null)
  t.equal(await lookup.userOf('sk_unknown'), null)
  t.equal(asked.length, 2, 'an unknown key is remembered as unknown too')
})

t.test('expiry, revocation and an inactive user are checked from the cached row on every request', async (t) => {
  const clock = manualClock(Date.UTC(2026, 0, 1))
  const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms)
  const rows: Record<string, ReturnType<typeof row>> = {
    [hashApiKey('sk_expiring')]: row({ expires_at: at(1000) }),
    [hashApiKey('sk_rolled')]: row({ revoked_at: at(2000) }),
    [hashApiKey('sk_inactive')]: row({ is_active: false }),
  }
  const lookup = stackKeyLookup({ now: clock.now, query: async (_text, values) => ({ rows: rows[values[0] as string] ? [rows[values[0] as string]!] : [] }) })
  t.equal(await lookup.userOf('sk_expiring'), 'u1', 'before its expiry')
  t.equal(await lookup.userOf('sk_rolled'), 'u1', 'before its revocation time')
  t.equal(await lookup.userOf('sk_inactive'), null, 'user inactive')
  clock.advance(1000)
  t.equal(await lookup.userOf('sk_expiring'), null, 'expired')
  clock.advance(1000)
  t.equal(await lookup.userOf('sk_rolled'), null, 'revoked')
})
