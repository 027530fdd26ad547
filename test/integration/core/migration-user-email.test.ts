import t from 'tap'
import { openPgDb } from '../../../core/db-pg.ts'
import { loadMigrations, migrate } from '../../../core/migrate.ts'
import { userStore } from '../../../core/user-store.ts'
import { testSchema } from '../../helpers/postgres.ts'

t.test('users created before emails were required get <username>@users.invalid, and every email is canonical', async (t) => {
  const schema = await testSchema('user_email')
  const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
  t.teardown(async () => { await db.close(); await schema.drop() })
  const all = await loadMigrations()
  const before = all.filter((m) => m.id < '006')
  await migrate(db, before)
  await db.query("INSERT INTO users (username, password_hash) VALUES ('OldTimer', 'x')")
  await db.query("INSERT INTO users (username, email, password_hash) VALUES ('mixed', 'Mixed.Case@Example.com', 'x')")
  t.same(await migrate(db, all), all.filter((m) => m.id >= '006').map((m) => m.id), 'the later migrations apply')

  const old = await userStore.findForLogin(db, { username: 'oldtimer' })
  t.equal(old?.email, 'oldtimer@users.invalid', 'a user without email gets the documented placeholder')
  t.equal(old?.is_verified, false)
  t.equal(old?.bio, null)
  t.equal((await userStore.findForLogin(db, { email: 'MIXED.case@example.com' }))?.email, 'mixed.case@example.com', 'emails are stored in canonical form')
  await t.rejects(db.query("INSERT INTO users (username, password_hash) VALUES ('nomail', 'x')"), 'a user without email can no longer be stored')
})
