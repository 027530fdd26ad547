import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { apiKeyFormat, hashApiKey } from '../../../core/api-key-format.ts'
import type { Db } from '../../../core/db.ts'
import { openPgDb } from '../../../core/db-pg.ts'
import { openPgliteDb } from '../../../core/db-pglite.ts'
import { keyStore } from '../../../core/key-store.ts'
import { migrate } from '../../../core/migrate.ts'
import { userStore } from '../../../core/user-store.ts'
import { testSchema } from '../../helpers/postgres.ts'

/** Both databases Keygate runs on: the same SQL must give the same answers. */
const databases: Array<{ name: string; open(t: Test): Promise<Db> }> = [
  {
    name: 'PostgreSQL',
    async open(t) {
      const schema = await testSchema('key_store')
      const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
      t.teardown(async () => { await db.close(); await schema.drop() })
      return db
    },
  },
  {
    name: 'PGlite',
    async open(t) {
      const dir = mkdtempSync(join(tmpdir(), 'keygate-test-key-store-'))
      const db = await openPgliteDb(dir)
      t.teardown(async () => { await db.close(); rmSync(dir, { recursive: true, force: true }) })
      return db
    },
  },
]

for (const database of databases) {
  t.test(`${database.name}: the keys of many hashes are found in one statement, with their users; unknown hashes are absent`, async (t) => {
    const db = await database.open(t)
    await migrate(db)
    const now = new Date('2026-12-01T00:00:00Z')
    const format = apiKeyFormat()
    const alice = await userStore.create(db, { username: 'alice', email: 'alice@example.com', passwordHash: 'x' }, now)
    const bob = await userStore.create(db, { username: 'bob', email: 'bob@example.com', passwordHash: 'x' }, now)
    const make = async (userId: string, name: string) => {
      const { key } = format.generate()
      const row = await keyStore.create(db, { userId, name, hash: hashApiKey(key), display: name, scopes: ['read'], expiresAt: null, maxActive: 10 }, now)
      return { key, hash: hashApiKey(key), id: row.id }
    }
    const a1 = await make(alice.id, 'a1')
    const a2 = await make(alice.id, 'a2')
    const b1 = await make(bob.id, 'b1')
    const revoked = await keyStore.revoke(db, bob.id, b1.id, now)
    t.ok(revoked, 'bob\'s key revoked')
    const unknown = hashApiKey(format.generate().key)

    const found = await keyStore.findByHashes(db, [a1.hash, unknown, b1.hash, a2.hash])
    t.same([...found.keys()].sort(), [a1.hash, a2.hash, b1.hash].sort(), 'every known hash, the unknown one absent')
    t.match(found.get(a1.hash), { keyId: a1.id, userId: alice.id, username: 'alice', userActive: true, scopes: ['read'], revokedAt: null, expiresAt: null })
    t.match(found.get(b1.hash), { keyId: b1.id, username: 'bob', revokedAt: now.getTime() }, 'a revoked key is returned, with its revocation time')
    t.same(await keyStore.findByHashes(db, []), new Map(), 'no hash, no key')

    t.same(await keyStore.findByHash(db, a2.hash), found.get(a2.hash), 'the single lookup answers the same record')
    t.equal(await keyStore.findByHash(db, unknown), null)
  })
}
