import pg from 'pg'
import { DatabaseUnavailableError } from './errors.ts'
import { isConnectionFailure, type Db, type Queryable } from './db.ts'

export interface PgDbOptions {
  connectionString: string
  /** Schema to use (search_path); tests give each run its own. Created when missing. */
  schema?: string
  poolSize?: number
  statementTimeoutMs?: number
  connectTimeoutMs?: number
}

function guard<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw isConnectionFailure(err) ? new DatabaseUnavailableError(err) : err
  })
}

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    query: <R,>(sql: string, params?: readonly unknown[]) =>
      guard(client.query(sql, params as unknown[] | undefined)).then((r) => ({ rows: r.rows as R[] })),
    exec: (sql: string) => guard(client.query(sql)).then(() => undefined),
  }
}

/** Opens a pool on a PostgreSQL server. The pool connects lazily; a dead server surfaces as DATABASE_UNAVAILABLE. */
export async function openPgDb(options: PgDbOptions): Promise<Db> {
  const schema = options.schema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new RangeError(`invalid schema name ${schema}`)
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    options: schema ? `-c search_path=${schema}` : undefined,
  })
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {})
  if (schema) await guard(pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`))
  const root = wrap(pool)
  return {
    kind: 'pg',
    ...root,
    async transaction(fn) {
      const client = await guard(pool.connect())
      try {
        await guard(client.query('BEGIN'))
        const result = await fn(wrap(client))
        await guard(client.query('COMMIT'))
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },
    close: () => pool.end(),
  }
}
