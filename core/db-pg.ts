import pg from 'pg'
import { TUNABLES } from '../config/tunables.ts'
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

/**
 * How long after the statement timeout a query may still wait for its answer before the client gives up on
 * the connection. The statement timeout is enforced by the server, so it cannot end a query whose server never
 * sees it or whose answer never arrives (a network partition: nothing answers, nothing fails); this bound can.
 */
export const QUERY_READ_MARGIN_MS = TUNABLES.database.queryReadMarginMs

/** Failures that mean the database cannot serve now, as opposed to a wrong query. */
function unavailable(err: unknown): boolean {
  if (isConnectionFailure(err)) return true
  const e = err as { code?: string; message?: string } | null
  // 57014: cancelled by the statement timeout (a database too slow to answer in time).
  return e?.code === '57014' || e?.message === 'Query read timeout'
}

function guard<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw unavailable(err) ? new DatabaseUnavailableError(err) : err
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
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    statement_timeout: statementTimeoutMs,
    // Client side: a query whose answer does not come fails with "Query read timeout", and the pool discards
    // that connection (a query on it may still be pending).
    query_timeout: statementTimeoutMs + QUERY_READ_MARGIN_MS,
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
      // A connection that failed or timed out is discarded, never handed to the next caller: a timed-out query
      // may still be pending on it. Its transaction ends with it.
      let broken: Error | undefined
      try {
        await guard(client.query('BEGIN'))
        const result = await fn(wrap(client))
        await guard(client.query('COMMIT'))
        return result
      } catch (err) {
        if (err instanceof DatabaseUnavailableError) broken = err
        else await client.query('ROLLBACK').catch((e: unknown) => { broken = e as Error })
        throw err
      } finally {
        client.release(broken)
      }
    },
    close: () => pool.end(),
  }
}
