import t from 'tap'
import { apiKeyFormat } from '../../../core/api-key-format.ts'
import { apiKeys } from '../../../core/api-keys.ts'
import { auditStore } from '../../../core/audit-store.ts'
import { manualClock } from '../../../core/clock.ts'
import { openPgDb } from '../../../core/db-pg.ts'
import { inProcessBus, type Invalidation } from '../../../core/invalidation.ts'
import { invalidationPublisher } from '../../../core/invalidation-publisher.ts'
import { keyExpirySweeper } from '../../../core/key-expiry-sweeper.ts'
import { migrate } from '../../../core/migrate.ts'
import { userStore } from '../../../core/user-store.ts'
import { testSchema } from '../../helpers/postgres.ts'

t.test('an expired key is recorded in the audit trail once, however many instances sweep', async (t) => {
  const schema = await testSchema('sweeper')
  const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
  t.teardown(async () => { await db.close(); await schema.drop() })
  await migrate(db)
  const clock = manualClock(Date.UTC(2026, 5, 1))
  const bus = inProcessBus()
  const heard: Invalidation[] = []
  bus.subscribe((m) => heard.push(m))
  const publisher = invalidationPublisher({ db, bus, drainMs: 1000, settleMs: 0 })
  const keys = apiKeys({ db, clock, format: apiKeyFormat(), publisher, maxActivePerUser: 5 })
  const user = await userStore.create(db, { username: 'ivy', email: 'ivy@example.com', passwordHash: 'x' }, new Date(clock.now()))
  await keys.create(user.id, { name: 'short', expiresAt: new Date(clock.now() + 60_000) }, {})
  await keys.create(user.id, { name: 'forever' }, {})

  const a = keyExpirySweeper({ clock, publisher })
  const b = keyExpirySweeper({ clock, publisher })
  t.equal(await a.sweep(), 0, 'nothing has expired yet')
  clock.advance(60_000)
  const counts = await Promise.all([a.sweep(), b.sweep()])
  t.equal(counts[0]! + counts[1]!, 1, 'two sweepers at once claim the key once')
  t.equal(await a.sweep(), 0, 'and never again')
  const events = await auditStore.list(db, { subjectUserId: user.id, limit: 50 })
  t.equal(events.filter((e) => e.event === 'key.expired').length, 1)
  t.equal(heard.filter((m) => m.kind === 'key').length, 1, 'caches are told')
})
