import t from 'tap'
import type { Principal } from '../../../gateway/authenticator.ts'
import { streamRegistry } from '../../../gateway/stream-registry.ts'

const principal = (validUntil?: number): Principal => ({ userId: 'u1', username: 'alice', auth: 'api_key', keyId: 'k1', scopes: ['*'], credentialId: 'k:k1', revocationKey: 'k:h1', ...(validUntil === undefined ? {} : { validUntil }) })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('an exchange is closed when its credential\'s deadline passes and the check refuses it', async (t) => {
  const reasons: string[] = []
  let closed = 0
  const registry = streamRegistry({ recheck: async () => undefined, onClosed: ({ reason }) => reasons.push(reason) })
  registry.track(principal(Date.now() + 30), 'sk_live_x', () => closed++)
  t.equal(registry.size, 1)
  await sleep(80)
  t.equal(closed, 1)
  t.same(reasons, ['expired'])
  t.equal(registry.size, 0)
})

t.test('a revocation that leaves the credential valid moves its deadline to the new one', async (t) => {
  let deadline: number | undefined
  let closed = 0
  const registry = streamRegistry({ recheck: async () => (deadline !== undefined && Date.now() >= deadline ? undefined : principal(deadline)) })
  registry.track(principal(), 'sk_live_x', () => closed++)
  // Rolled with a grace period: still accepted, until 40 ms from now.
  deadline = Date.now() + 40
  t.equal(await registry.revoked({ kind: 'key', keyHash: 'h1' }), 0, 'still accepted: stays open')
  await sleep(100)
  t.equal(closed, 1, 'closed when the grace period ended')
})

t.test('an exchange that ended before its deadline is not checked again', async (t) => {
  let checks = 0
  const registry = streamRegistry({ recheck: async () => { checks++; return undefined } })
  const untrack = registry.track(principal(Date.now() + 20), 'sk_live_x', () => t.fail('closed after it ended'))
  untrack()
  await sleep(60)
  t.equal(checks, 0)
})

t.test('exchanges with different deadlines are each closed at their own, whatever order they were opened in', async (t) => {
  const closed: string[] = []
  const registry = streamRegistry({ recheck: async () => undefined })
  const start = Date.now()
  registry.track(principal(start + 90), 'sk_live_late', () => closed.push('late'))
  registry.track(principal(start + 20), 'sk_live_early', () => closed.push('early'))
  registry.track(principal(), 'sk_live_none', () => closed.push('none'))
  await sleep(55)
  t.same(closed, ['early'], 'the earlier deadline, tracked second, came first')
  await sleep(90)
  t.same(closed, ['early', 'late'])
  t.equal(registry.size, 1, 'the exchange without a deadline stays open')
})
