import { api, type AuditEvent, type User } from './api.ts'
import { field, h, notice, replace } from './dom.ts'

const PAGE = 100

/** An event's time to the second, in the viewer's zone. */
const at = (iso: string) => new Date(iso).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })

/**
 * The audit trail (superusers: everyone's credential events), newest first, filtered by user (on the server) and
 * by event (on the page shown), older pages on demand. Never a secret: ids, names and addresses.
 */
export async function auditPage(main: HTMLElement): Promise<void> {
  const status = h('div', { class: 'status-area' })
  const list = h('div')
  const user = h('select', {}, h('option', { value: '' }, 'Any user'))
  const names = new Map<string, string>()
  try {
    const page = await api<{ users: User[] }>('GET', '/users?limit=200')
    for (const u of page.users) {
      names.set(u.id, u.username)
      user.appendChild(h('option', { value: u.id }, u.username))
    }
  } catch { /* the ids are shown as they are */ }
  /** A user id as the username it belongs to, the id kept for screen readers and copying. */
  const who = (id: string | null) => (id === null ? '—' : names.has(id) ? h('span', { title: id }, names.get(id)!) : h('span', { class: 'id' }, id))
  const event = h('select', {}, h('option', { value: '' }, 'Any event'),
    ...['login.succeeded', 'login.failed', 'logout', 'logout.everywhere', 'token.reuse_detected', 'key.created', 'key.rolled', 'key.revoked', 'key.expired',
      'user.created', 'user.updated', 'user.deactivated', 'user.reactivated', 'password.changed', 'password.reset', 'password.set'].map((e) => h('option', { value: e }, e)))
  let events: AuditEvent[] = []
  let more = false

  const filters = h('form', { class: 'card row', 'aria-label': 'Filters', role: 'search' },
    field('User', user), field('Event', event),
    h('button', { type: 'submit', class: 'primary' }, 'Apply filters'))

  function render(): void {
    const shown = event.value ? events.filter((e) => e.event === event.value) : events
    const older = h('button', { type: 'button', class: 'secondary', disabled: !more }, 'Older events')
    older.addEventListener('click', () => void load(events.at(-1)?.id))
    replace(list, shown.length
      ? h('table', {}, h('caption', { class: 'sr-only' }, 'Audit events'),
        h('thead', {}, h('tr', {}, ...['When', 'Event', 'Actor', 'Subject', 'Key', 'From', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...shown.map((e) => h('tr', {},
          h('td', {}, at(e.at)), h('td', {}, h('code', {}, e.event)), h('td', {}, who(e.actor_user_id)), h('td', {}, who(e.subject_user_id)),
          h('td', {}, e.key_id ? h('code', { title: e.key_id }, e.key_id.slice(0, 8)) : '—'), h('td', {}, e.client_address ?? '—'),
          h('td', {}, Object.entries(e.detail).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ') || '—')))))
      : h('p', { class: 'empty' }, 'No events match.'), h('div', { class: 'actions' }, older))
  }

  async function load(before?: string): Promise<void> {
    const id = user.value
    const q = new URLSearchParams({ limit: String(PAGE) })
    if (id) q.set('user_id', id)
    if (before) q.set('before', before)
    try {
      const page = await api<AuditEvent[]>('GET', `/audit?${q}`)
      events = before ? [...events, ...page] : page
      more = page.length === PAGE
      replace(status)
      render()
    } catch (err) {
      replace(status, notice('error', (err as Error).message))
    }
  }

  filters.addEventListener('submit', (e) => { e.preventDefault(); void load() })
  replace(main, h('h1', { tabindex: '-1' }, 'Audit trail'), filters, status, list)
  await load()
}
