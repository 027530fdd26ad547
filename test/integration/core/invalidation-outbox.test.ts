import t from 'tap'
import { openPgDb } from '../../../core/db-pg.ts'
import type { Invalidation } from '../../../core/invalidation.ts'
import { invalidationOutbox } from '../../../core/invalidation-outbox.ts'
import { migrate } from '../../../core/migrate.ts'
import { testSchema } from '../../helpers/postgres.ts'

t.test('owed invalidations are published once each, in order, and stay owed while publishing fails', async (t) => {
  const schema = await testSchema('outbox')
  const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
  t.teardown(async () => { await db.close(); await schema.drop() })
  await migrate(db)
  const outbox = invalidationOutbox(db)
  const messages: Invalidation[] = [{ kind: 'key', keyHash: 'aa' }, { kind: 'session', sessionId: 's1' }, { kind: 'user', userId: 'u1' }]
  for (const m of messages) await outbox.add(db, [m])

  let calls = 0
  await t.rejects(outbox.drain(async () => { if (++calls === 2) throw new Error('transport down') }), /transport down/)
  t.equal((await db.query('SELECT count(*)::int AS n FROM invalidation_outbox')).rows[0]!.n, 3, 'a failed drain keeps every message owed')

  // Two instances draining at once: the rows one holds are skipped by the other, so none is published twice.
  const heard: Invalidation[] = []
  const slow = async (m: Invalidation) => { await new Promise((r) => setTimeout(r, 20)); heard.push(m) }
  const counts = await Promise.all([outbox.drain(slow), outbox.drain(slow)])
  t.equal(counts[0] + counts[1], 3)
  t.same(heard, messages, 'each message once, oldest first')
  t.equal((await db.query('SELECT count(*)::int AS n FROM invalidation_outbox')).rows[0]!.n, 0, 'nothing is owed afterwards')
  t.equal(await outbox.drain(async () => { t.fail('nothing to publish') }), 0)
})
