import t from 'tap'
import { resolve } from 'node:path'
import { describeDatabase } from '../../../cli/database.ts'

t.test('the database is named by server, database and schema, never by its credentials', async (t) => {
  const said = describeDatabase({ DATABASE_URL: 'postgres://keygate:s3cret-pw@db.internal:5433/auth?sslmode=require', DATABASE_SCHEMA: 'tenant_a', KEYGATE_DATA_DIR: './data' })
  t.equal(said, 'PostgreSQL db.internal:5433/auth, schema tenant_a')
  t.notMatch(said, /s3cret|keygate:/)
  t.equal(describeDatabase({ DATABASE_URL: 'postgres://db', KEYGATE_DATA_DIR: './data' }), 'PostgreSQL db/(default database)')
  t.equal(describeDatabase({ KEYGATE_DATA_DIR: './data' }), `embedded PostgreSQL (PGlite) in ${resolve('data')}`, 'the embedded directory, absolute')
})
