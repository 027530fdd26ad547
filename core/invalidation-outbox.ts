import type { Db } from './db.ts'
import type { Invalidation } from './invalidation.ts'

/**
 * The invalidations still owed to the other instances, kept in the database beside the changes they announce:
 * what an instance could not publish outlives that instance. `drain` publishes the oldest ones and deletes
 * them in one transaction (rows another instance is draining are skipped), so each is published at least once;
 * publishing one twice only drops a cache entry twice.
 */
export interface InvalidationOutbox {
  add(message: Invalidation): Promise<void>
  /** Publishes up to `limit` owed messages with `publish`; resolves with how many went out. */
  drain(publish: (message: Invalidation) => Promise<void>, limit?: number): Promise<number>
}

export function invalidationOutbox(db: Db): InvalidationOutbox {
  return {
    async add(message) {
      await db.query('INSERT INTO invalidation_outbox (message) VALUES ($1)', [JSON.stringify(message)])
    },
    async drain(publish, limit = 100) {
      // The common case, nothing owed, costs one cheap query and no transaction.
      if ((await db.query('SELECT 1 FROM invalidation_outbox LIMIT 1')).rows.length === 0) return 0
      return db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: string; message: Invalidation }>(
          'SELECT id, message FROM invalidation_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
          [limit],
        )
        for (const row of rows) await publish(row.message)
        if (rows.length) await tx.query('DELETE FROM invalidation_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)])
        return rows.length
      })
    },
  }
}
