import { api, type AuditEvent } from './api.ts'
import { field, h, notice, replace, when } from './dom.ts'

const PAGE = 100
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The audit trail (superusers: everyone's credential events), newest first, filtered by user (on the server) and
 * by event (on the page shown), older pages on demand. Never a secret: ids, names and addresses.
 */
export async function auditPage(main: HTMLElement): Promise<void> {
  const status = h('div', { class: 'status-area' })
  const list = h('div')
  const user = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'any user' })
  const event = h('select', {}, h('option', { value: '' }, 'Any event'),
    ...['login.succeeded', 'login.failed', 'logout', 'logout.everywhere', 'token.reuse_detected', 'key.created', 'key.rolled', 'key.revoked', 'key.expired',
      'user.created', 'user.updated', 'user.deactivated', 'user.reactivated', 'password.changed', 'password.reset', 'password.set'].map((e) => h('option', { value: e }, e)))
  let events: AuditEvent[] = []
  let more = false

  const filters = h('form', { class: 'card row', 'aria-label': 'Filters', role: 'search' },
    field('User id', user, 'A user\'s id, from the Users page.'), field('Event', event),
    h('button', { type: 'submit', class: 'primary' }, 'Apply filters'))

  function render(): void {
    const shown = event.value ? events.filter((e) => e.event === event.value) : events
    const older = h('button', { type: 'button', class: 'secondary', disabled: !more }, 'Older events')
    older.addEventListener('click', () => void load(events.at(-1)?.id))
    replace(list, shown.length
      ? h('table', {}, h('caption', { class: 'sr-only' }, 'Audit events'),
        h('thead', {}, h('tr', {}, ...['When', 'Event', 'Actor', 'Subject', 'Key', 'From', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...shown.map((e) => h('tr', {},
          h('td', {}, when(e.at)), h('td', {}, h('code', {}, e.event)), h('td', { class: 'id' }, e.actor_user_id ?? '—'), h('td', { class: 'id' }, e.subject_user_id ?? '—'),
          h('td', { class: 'id' }, e.key_id ?? '—'), h('td', {}, e.client_address ?? '—'),
          h('td', {}, Object.entries(e.detail).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ') || '—')))))
      : h('p', { class: 'empty' }, 'No events match.'), h('div', { class: 'actions' }, older))
  }

  async function load(before?: string): Promise<void> {
    const id = user.value.trim()
    if (id && !UUID.test(id)) {
      replace(status, notice('error', 'A user id looks like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.'))
      return
    }
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
  event.addEventListener('change', render)
  replace(main, h('h1', { tabindex: '-1' }, 'Audit trail'), filters, status, list)
  await load()
}
