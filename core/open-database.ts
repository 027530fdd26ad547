import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Db } from './db.ts'
import { openPgDb } from './db-pg.ts'
import { openPgliteDb } from './db-pglite.ts'
import { ConfigError } from './errors.ts'
import { processAlive } from './process-alive.ts'

export interface DatabaseSettings {
  DATABASE_URL?: string
  DATABASE_SCHEMA?: string
  DATABASE_POOL_SIZE: number
  DATABASE_STATEMENT_TIMEOUT_MS: number
  KEYGATE_DATA_DIR: string
}

/**
 * Opens the database a composition root asked for: the PostgreSQL server at DATABASE_URL, else the embedded
 * PostgreSQL under KEYGATE_DATA_DIR. The embedded one belongs to one process at a time, so its directory
 * holds a lock file naming the owner; a second process (say the CLI while the gateway runs) is refused.
 * @throws ConfigError when the data directory is in use
 */
/** The LISTEN/NOTIFY channel of a deployment: one per schema, so deployments sharing a database stay apart. */
export function invalidationChannel(settings: Pick<DatabaseSettings, 'DATABASE_SCHEMA'>): string {
  return settings.DATABASE_SCHEMA ? `keygate_invalidation_${settings.DATABASE_SCHEMA}` : 'keygate_invalidation'
}

export async function openDatabase(settings: DatabaseSettings): Promise<Db> {
  if (settings.DATABASE_URL) {
    return openPgDb({ connectionString: settings.DATABASE_URL, poolSize: settings.DATABASE_POOL_SIZE, statementTimeoutMs: settings.DATABASE_STATEMENT_TIMEOUT_MS, schema: settings.DATABASE_SCHEMA })
  }
  const dir = resolve(settings.KEYGATE_DATA_DIR)
  mkdirSync(dir, { recursive: true })
  const lock = join(dir, 'keygate.lock')
  let owner: number | undefined
  try {
    owner = Number(readFileSync(lock, 'utf8').trim())
  } catch {
    owner = undefined
  }
  if (owner && owner !== process.pid && processAlive(owner)) {
    throw new ConfigError([`KEYGATE_DATA_DIR ${dir} is in use by process ${owner}: the embedded database serves one process at a time. Stop it, use its admin API, or set DATABASE_URL to share a PostgreSQL server.`])
  }
  writeFileSync(lock, String(process.pid))
  const db = await openPgliteDb(join(dir, 'pgdata'))
  return {
    ...db,
    transaction: db.transaction,
    close: async () => {
      await db.close()
      rmSync(lock, { force: true })
    },
  }
}
