import { api, ApiError, type ApiKey, type NewKey } from './api.ts'
import { confirmDialog, field, h, notice, replace, when } from './dom.ts'

const EXPIRY_CHOICES: Array<[string, string]> = [['', 'Never'], ['7', '7 days'], ['30', '30 days'], ['90', '90 days'], ['365', '1 year']]
const GRACE_CHOICES: Array<[string, string]> = [['0', 'None: the old key stops now'], ['3600', '1 hour'], ['86400', '24 hours'], ['604800', '7 days']]

/** Rate limits and usage, whatever their shape: a number, or an object of named figures. */
function figures(v: unknown): string {
  if (v === null || v === undefined) return '—'
  if (typeof v !== 'object') return String(v)
  return Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== null && typeof x !== 'object').map(([k, x]) => `${k.replace(/_/g, ' ')}: ${String(x)}`).join(', ') || '—'
}

/**
 * The one-time panel: the secret as the API returned it, with a warning, a Copy button and a Done button that
 * forgets it. It lives in this element only: never in storage, the URL or the history.
 */
function secretPanel(created: NewKey, rolled: boolean, done: () => void): HTMLElement {
  const input = h('input', { type: 'text', readonly: true, value: created.api_key, autocomplete: 'off', spellcheck: 'false', class: 'secret', 'aria-label': 'New API key' })
  const status = h('span', { role: 'status', class: 'copied' })
  const copy = h('button', { type: 'button', class: 'primary' }, 'Copy')
  copy.addEventListener('click', async () => {
    input.select()
    try {
      await navigator.clipboard.writeText(input.value)
      status.textContent = 'Copied to the clipboard.'
    } catch {
      status.textContent = 'Select the key and copy it (Ctrl+C).'
    }
  })
  const close = h('button', { type: 'button', class: 'secondary' }, 'Done')
  const panel = h('section', { class: 'secret-panel', 'aria-labelledby': 'secret-title', tabindex: '-1' },
    h('h2', { id: 'secret-title' }, rolled ? `New secret for “${created.api_key_name}”` : `Your new key “${created.api_key_name}”`),
    h('p', { class: 'warning' }, h('strong', {}, 'Copy this key now. '), 'It is shown only once: Keygate stores only its hash and cannot show it again. Treat it like a password.'),
    h('div', { class: 'secret-row' }, input, copy), status,
    rolled ? h('p', {}, 'Replace the old key wherever it is used before its grace period ends.') : null,
    h('div', { class: 'actions' }, close))
  close.addEventListener('click', () => { input.value = ''; panel.remove(); done() })
  return panel
}

export async function keysPage(main: HTMLElement): Promise<void> {
  const status = h('div', { class: 'status-area' })
  const slot = h('div')
  const list = h('div', { 'aria-busy': 'true' }, 'Loading…')

  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100, autocomplete: 'off' })
  const expiry = h('select', { name: 'expiry' }, ...EXPIRY_CHOICES.map(([v, t]) => h('option', { value: v }, t)))
  const scopes = h('input', { type: 'text', name: 'scopes', autocomplete: 'off', placeholder: 'read:documents write:documents' })
  const form = h('form', { class: 'card', 'aria-labelledby': 'create-title', novalidate: true },
    h('h2', { id: 'create-title' }, 'New key'),
    h('div', { class: 'row' },
      field('Key name', name, 'What uses it, for example “billing worker”.'),
      field('Expires', expiry),
      field('Scopes', scopes, 'Optional, separated by spaces or commas. Empty: the key can do all that you can.')),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'))

  const show = (created: NewKey, rolled: boolean) => {
    const panel = secretPanel(created, rolled, () => form.querySelector('button')?.focus())
    replace(slot, panel)
    panel.focus()
  }

  async function load(): Promise<void> {
    try {
      const keys = await api<ApiKey[]>('GET', '/api-keys')
      replace(list, keysTable(keys))
      list.removeAttribute('aria-busy')
    } catch (err) {
      replace(list, notice('error', (err as Error).message))
    }
  }

  function keysTable(keys: ApiKey[]): HTMLElement {
    if (!keys.length) return h('p', { class: 'empty' }, 'You have no active API keys.')
    const limits = keys.some((k) => k.rate_limit !== undefined)
    const usage = keys.some((k) => k.usage !== undefined)
    const head = ['Name', 'Key', 'Scopes', 'Created', 'Last used', 'Expires', ...(limits ? ['Rate limit'] : []), ...(usage ? ['Usage'] : []), 'Actions']
    return h('table', {},
      h('caption', { class: 'sr-only' }, 'Your API keys'),
      h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...keys.map((k) => {
        const nameId = `key-${k.id}`
        const roll = h('button', { type: 'button', class: 'secondary', 'aria-describedby': nameId }, 'Roll')
        const revoke = h('button', { type: 'button', class: 'danger', 'aria-describedby': nameId }, 'Revoke')
        roll.addEventListener('click', () => rollKey(k))
        revoke.addEventListener('click', () => revokeKey(k))
        return h('tr', {},
          h('th', { scope: 'row', id: nameId }, k.api_key_name),
          h('td', {}, h('code', {}, k.api_key)),
          h('td', {}, k.scopes?.length ? k.scopes.join(' ') : 'all'),
          h('td', {}, when(k.created_at)), h('td', {}, when(k.last_used_at)), h('td', {}, k.expires_at ? when(k.expires_at) : 'never'),
          limits ? h('td', {}, figures(k.rate_limit)) : null,
          usage ? h('td', {}, figures(k.usage)) : null,
          h('td', { class: 'actions-cell' }, roll, revoke))
      })))
  }

  async function rollKey(k: ApiKey): Promise<void> {
    const grace = h('select', {}, ...GRACE_CHOICES.map(([v, t]) => h('option', { value: v }, t)))
    const go = await confirmDialog(`Roll “${k.api_key_name}”?`, [
      h('p', {}, 'A new secret replaces this key. The old secret keeps working for the grace period you choose, then stops.'),
      field('Grace period', grace)], 'Roll key')
    if (!go) return
    try {
      const created = await api<NewKey>('POST', `/api-keys/${encodeURIComponent(k.id)}/roll`, { grace_period_seconds: Number(grace.value) })
      replace(status)
      show(created, true)
      await load()
    } catch (err) {
      replace(status, notice('error', (err as Error).message))
    }
  }

  async function revokeKey(k: ApiKey): Promise<void> {
    const go = await confirmDialog(`Revoke “${k.api_key_name}”?`, [h('p', {}, `Everything using ${k.api_key} stops working at once, on every gateway. This cannot be undone.`)], 'Revoke key', true)
    if (!go) return
    try {
      await api('DELETE', `/api-keys/${encodeURIComponent(k.id)}`)
      replace(status, notice('ok', `Key “${k.api_key_name}” revoked.`))
      await load()
      main.querySelector<HTMLElement>('h1')?.focus()
    } catch (err) {
      replace(status, notice('error', (err as Error).message))
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const keyName = name.value.trim()
    if (!keyName) {
      replace(status, notice('error', 'Give the key a name.'))
      name.setAttribute('aria-invalid', 'true')
      name.focus()
      return
    }
    name.removeAttribute('aria-invalid')
    const body: Record<string, unknown> = { name: keyName }
    if (expiry.value) body.expires_in_days = Number(expiry.value)
    const wanted = scopes.value.split(/[\s,]+/).filter(Boolean)
    if (wanted.length) body.scopes = wanted
    try {
      const created = await api<NewKey>('POST', '/api-key', body)
      form.reset()
      replace(status)
      show(created, false)
      await load()
    } catch (err) {
      const e = err as ApiError
      replace(status, notice('error', e.code === 'KEY_LIMIT_REACHED' ? `${e.message} Revoke or roll a key below instead.` : e.message))
    }
  })

  replace(main, h('h1', { tabindex: '-1' }, 'My API keys'),
    h('p', { class: 'lead' }, 'Keys let programs call the API as you. Each key is shown once, when it is created or rolled.'),
    status, slot, form, h('h2', {}, 'Active keys'), list)
  await load()
}
