import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The local PostgreSQL server the integration tests use (override with TEST_DATABASE_URL). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const HOW_TO_START = 'start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (or set TEST_DATABASE_URL)'

/**
 * A fresh schema on the local PostgreSQL server for one test file; `drop()` removes it. Fails loudly (never
 * skips) when the server does not answer.
 */
export interface TestSchema { url: string; schema: string; drop(): Promise<void> }

export async function testSchema(label: string): Promise<TestSchema> {
  const schema = `kg_${label.replace(/[^a-z0-9]/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
  } catch (err) {
    throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is not answering (${(err as Error).message}); ${HOW_TO_START}`)
  }
  await client.query(`CREATE SCHEMA ${schema}`)
  await client.end()
  return {
    url: TEST_DATABASE_URL,
    schema,
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
    },
  }
}
