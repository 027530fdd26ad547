import { PGlite, type Transaction } from '@electric-sql/pglite'
import { DatabaseUnavailableError } from './errors.ts'
import type { Db, Queryable } from './db.ts'

function wrap(client: PGlite | Transaction): Queryable {
  return {
    query: <R,>(sql: string, params?: readonly unknown[]) =>
      client.query<R>(sql, params as unknown[] | undefined).then((r) => ({ rows: r.rows })),
    exec: (sql: string) => client.exec(sql).then(() => undefined),
  }
}

/**
 * Opens the embedded PostgreSQL (PGlite) persisted under `dataDir` (created when missing), or in memory when
 * `dataDir` is `memory://`. One process owns a data directory at a time.
 */
export async function openPgliteDb(dataDir: string): Promise<Db> {
  let db: PGlite
  try {
    db = await PGlite.create(dataDir)
  } catch (err) {
    throw new DatabaseUnavailableError(err)
  }
  const root = wrap(db)
  return {
    kind: 'pglite',
    ...root,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  }
}
