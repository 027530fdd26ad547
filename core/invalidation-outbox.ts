import type { Db, Queryable } from './db.ts'
import type { Invalidation } from './invalidation.ts'

/**
 * The invalidations owed to the other instances, kept in the database beside the changes they announce: a
 * change and its outbox rows commit in one transaction, so an announcement outlives whatever happens to the
 * instance that made it. The publisher deletes the rows it sent; `drain` publishes the ones left (a failed
 * publish, a process that died between commit and publish) and deletes them in one transaction, skipping rows
 * another instance is draining, so each is published at least once; publishing one twice only drops a cache
 * entry twice.
 */
export interface InvalidationOutbox {
  /** Writes `messages` with `tx` (the transaction of the change they announce); resolves with their row ids. */
  add(tx: Queryable, messages: readonly Invalidation[]): Promise<string[]>
  /** Deletes rows whose messages were published. */
  remove(ids: readonly string[]): Promise<void>
  /** Publishes up to `limit` owed messages with `publish`, oldest first; resolves with how many went out. */
  drain(publish: (message: Invalidation) => Promise<void>, limit?: number): Promise<number>
}

export interface InvalidationOutboxOptions {
  /**
   * Rows younger than this are left to the instance that wrote them, which is publishing them right now; the
   * drain takes them after (0: at once).
   */
  settleMs?: number
}

export function invalidationOutbox(db: Db, options: InvalidationOutboxOptions = {}): InvalidationOutbox {
  const settle = `${Math.max(0, Math.floor(options.settleMs ?? 0))} milliseconds`
  return {
    async add(tx, messages) {
      if (!messages.length) return []
      const { rows } = await tx.query<{ id: string }>(
        'INSERT INTO invalidation_outbox (message) SELECT m FROM unnest($1::jsonb[]) AS m RETURNING id::text AS id',
        [messages.map((m) => JSON.stringify(m))],
      )
      return rows.map((r) => r.id)
    },
    async remove(ids) {
      if (ids.length) await db.query('DELETE FROM invalidation_outbox WHERE id = ANY($1::bigint[])', [ids])
    },
    async drain(publish, limit = 100) {
      // The common case, nothing owed, costs one cheap query and no transaction.
      if ((await db.query('SELECT 1 FROM invalidation_outbox WHERE created_at <= now() - $1::interval LIMIT 1', [settle])).rows.length === 0) return 0
      return db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: string; message: Invalidation }>(
          'SELECT id, message FROM invalidation_outbox WHERE created_at <= now() - $2::interval ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
          [limit, settle],
        )
        for (const row of rows) await publish(row.message)
        if (rows.length) await tx.query('DELETE FROM invalidation_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)])
        return rows.length
      })
    },
  }
}
