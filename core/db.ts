/**
 * The one database interface the stores use. Two implementations run the same SQL: `db-pg.ts` (a PostgreSQL
 * server through `pg`) and `db-pglite.ts` (embedded PostgreSQL, the default without `DATABASE_URL`).
 * Both throw `DatabaseUnavailableError` (code DATABASE_UNAVAILABLE) when the database cannot be reached.
 */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }>
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite'
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** Connection-level failures of `pg` and of the network: the database is down, not the query wrong. */
export function isConnectionFailure(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null
  if (!e || typeof e !== 'object') return false
  if (typeof e.code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(e.code)) return true
    // 08xxx connection exceptions, 57P0x operator intervention (shutdown), 53xxx insufficient resources
    if (/^(08|57P0|53)/.test(e.code)) return true
  }
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(e.message ?? '')
}
