import { api, type User } from './api.ts'
import { confirmDialog, field, h, notice, replace, when } from './dom.ts'

const PAGE = 50

/** Superusers: every user, newest first; create, deactivate or reactivate, mark verified, set a password. */
export async function usersPage(main: HTMLElement, me: User): Promise<void> {
  const status = h('div', { class: 'status-area' })
  const list = h('div', { 'aria-busy': 'true' }, 'Loading…')
  let offset = 0

  const username = h('input', { type: 'text', autocomplete: 'off', required: true, minlength: 3, maxlength: 50, spellcheck: 'false' })
  const email = h('input', { type: 'email', autocomplete: 'off', required: true })
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 128 })
  const superuser = h('input', { type: 'checkbox' })
  const create = h('form', { class: 'card', 'aria-labelledby': 'new-user-title', novalidate: true },
    h('h2', { id: 'new-user-title' }, 'New user'),
    h('div', { class: 'row' }, field('New username', username, '3–50 letters, digits, _ or -.'), field('Email', email), field('Initial password', password, 'At least 8 characters; tell the user to change it.')),
    h('div', { class: 'check' }, superuser, h('label', { for: superuser.id || (superuser.id = 'new-superuser') }, 'Superuser')),
    h('button', { type: 'submit', class: 'primary' }, 'Create user'))
  create.addEventListener('submit', async (e) => {
    e.preventDefault()
    try {
      const u = await api<User>('POST', '/users', { username: username.value.trim(), email: email.value.trim(), password: password.value, is_superuser: superuser.checked })
      create.reset()
      replace(status, notice('ok', `User “${u.username}” created.`))
      offset = 0
      await load()
    } catch (err) {
      password.value = ''
      replace(status, notice('error', (err as Error).message))
    }
  })

  async function patch(u: User, change: Record<string, unknown>, done: string): Promise<void> {
    try {
      await api('PATCH', `/users/${encodeURIComponent(u.id)}`, change)
      replace(status, notice('ok', done))
      await load()
    } catch (err) {
      replace(status, notice('error', (err as Error).message))
    }
  }

  async function setActive(u: User): Promise<void> {
    if (u.is_active) {
      const go = await confirmDialog(`Deactivate “${u.username}”?`, [h('p', {}, 'Every session and API key of this user stops working at once, on every gateway. You can reactivate the user later; the keys stay revoked.')], 'Deactivate user', true)
      if (go) await patch(u, { is_active: false }, `User “${u.username}” deactivated.`)
    } else {
      await patch(u, { is_active: true }, `User “${u.username}” reactivated.`)
    }
  }

  async function setPassword(u: User): Promise<void> {
    const input = h('input', { type: 'password', autocomplete: 'new-password', minlength: 8, maxlength: 128 })
    const go = await confirmDialog(`Set the password of “${u.username}”`, [h('p', {}, 'Every session of the user ends; API keys stay valid.'), field('New password', input, 'At least 8 characters.')], 'Set password')
    const value = input.value
    input.value = ''
    if (go) await patch(u, { password: value }, `Password of “${u.username}” set.`)
  }

  function table(users: User[], total: number): HTMLElement {
    const rows = users.map((u) => {
      const nameId = `user-${u.id}`
      const active = h('button', { type: 'button', class: u.is_active ? 'danger' : 'secondary', 'aria-describedby': nameId, disabled: u.id === me.id }, u.is_active ? 'Deactivate' : 'Activate')
      const verify = h('button', { type: 'button', class: 'secondary', 'aria-describedby': nameId }, u.is_verified ? 'Mark unverified' : 'Mark verified')
      const pw = h('button', { type: 'button', class: 'secondary', 'aria-describedby': nameId }, 'Set password')
      active.addEventListener('click', () => setActive(u))
      verify.addEventListener('click', () => patch(u, { is_verified: !u.is_verified }, `User “${u.username}” marked ${u.is_verified ? 'unverified' : 'verified'}.`))
      pw.addEventListener('click', () => setPassword(u))
      return h('tr', { class: u.is_active ? '' : 'inactive' },
        h('th', { scope: 'row', id: nameId }, u.username), h('td', {}, u.email),
        h('td', {}, u.is_active ? 'active' : 'deactivated'), h('td', {}, u.is_verified ? 'yes' : 'no'), h('td', {}, u.is_superuser ? 'yes' : 'no'),
        h('td', {}, when(u.created_at)), h('td', {}, when(u.last_login_at)), h('td', { class: 'actions-cell' }, active, verify, pw))
    })
    const prev = h('button', { type: 'button', class: 'secondary', disabled: offset === 0 }, 'Previous')
    const next = h('button', { type: 'button', class: 'secondary', disabled: offset + PAGE >= total }, 'Next')
    prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); void load() })
    next.addEventListener('click', () => { offset += PAGE; void load() })
    return h('div', {},
      h('table', {}, h('caption', { class: 'sr-only' }, 'Users'),
        h('thead', {}, h('tr', {}, ...['Username', 'Email', 'Status', 'Verified', 'Superuser', 'Created', 'Last login', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...rows)),
      h('nav', { class: 'pager', 'aria-label': 'Pages of users' }, prev, h('span', {}, `${total ? offset + 1 : 0}–${offset + users.length} of ${total}`), next))
  }

  async function load(): Promise<void> {
    try {
      const page = await api<{ users: User[]; total: number }>('GET', `/users?limit=${PAGE}&offset=${offset}`)
      replace(list, table(page.users, page.total))
      list.removeAttribute('aria-busy')
    } catch (err) {
      replace(list, notice('error', (err as Error).message))
    }
  }

  replace(main, h('h1', { tabindex: '-1' }, 'Users'), status, create, h('h2', {}, 'All users'), list)
  await load()
}
