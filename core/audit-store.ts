import type { Queryable } from './db.ts'

/** Credential events recorded in `audit_events`. Never holds a secret: ids, names and addresses only. */
export type AuditEventName =
  | 'login.succeeded' | 'login.failed' | 'logout' | 'logout.everywhere' | 'token.refreshed' | 'token.reuse_detected'
  | 'key.created' | 'key.revoked' | 'key.rolled' | 'key.expired' | 'key.limits_changed' | 'user.created' | 'user.updated' | 'user.deactivated' | 'user.reactivated'
  | 'password.changed' | 'password.reset' | 'password.set' | 'password_reset.requested'

export interface AuditEvent {
  event: AuditEventName
  actorUserId?: string | null
  subjectUserId?: string | null
  keyId?: string | null
  clientAddress?: string | null
  detail?: Record<string, string | number | boolean | null>
}

export interface AuditRow {
  id: string
  at: Date
  event: string
  actor_user_id: string | null
  subject_user_id: string | null
  key_id: string | null
  client_address: string | null
  detail: Record<string, unknown>
}

export const auditStore = {
  async record(db: Queryable, e: AuditEvent, now: Date): Promise<void> {
    await db.query(
      'INSERT INTO audit_events (at, event, actor_user_id, subject_user_id, key_id, client_address, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [now, e.event, e.actorUserId ?? null, e.subjectUserId ?? null, e.keyId ?? null, e.clientAddress ?? null, JSON.stringify(e.detail ?? {})],
    )
  },

  /** Newest first (by the numeric id: the text alias `id` would sort "9" above "10"); `before` is an event id for paging. */
  async list(db: Queryable, q: { subjectUserId?: string; limit: number; before?: number }): Promise<AuditRow[]> {
    const { rows } = await db.query<AuditRow>(
      `SELECT id::text AS id, at, event, actor_user_id, subject_user_id, key_id, client_address, detail FROM audit_events
       WHERE ($1::uuid IS NULL OR subject_user_id = $1 OR actor_user_id = $1) AND ($2::bigint IS NULL OR id < $2)
       ORDER BY audit_events.id DESC LIMIT $3`,
      [q.subjectUserId ?? null, q.before ?? null, q.limit],
    )
    return rows
  },
}
