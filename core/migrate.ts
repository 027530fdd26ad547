import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Db } from './db.ts'

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))
// Any constant shared by every Keygate instance: concurrent starts queue on it instead of racing.
const MIGRATION_LOCK = 0x6b657967

export interface Migration { readonly id: string; readonly sql: string }

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  return Promise.all(files.map(async (f) => ({ id: f.replace(/\.sql$/, ''), sql: await readFile(dir + f, 'utf8') })))
}

/**
 * Applies every migration not yet recorded in `keygate_migrations`, in one transaction under an advisory
 * lock, so several instances may start at once. Returns the ids it applied.
 */
export async function migrate(db: Db, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations())
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await tx.exec('CREATE TABLE IF NOT EXISTS keygate_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())')
    const done = new Set((await tx.query<{ id: string }>('SELECT id FROM keygate_migrations')).rows.map((r) => r.id))
    const applied: string[] = []
    for (const m of all) {
      if (done.has(m.id)) continue
      await tx.exec(m.sql)
      await tx.query('INSERT INTO keygate_migrations (id) VALUES ($1)', [m.id])
      applied.push(m.id)
    }
    return applied
  })
}

/** True when every known migration is recorded (readiness). */
export async function migrationsApplied(db: Db, migrations?: Migration[]): Promise<boolean> {
  const all = migrations ?? (await loadMigrations())
  const rows = (await db.query<{ id: string }>('SELECT id FROM keygate_migrations')).rows
  const done = new Set(rows.map((r) => r.id))
  return all.every((m) => done.has(m.id))
}
