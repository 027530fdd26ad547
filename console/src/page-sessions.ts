import { api, forget, type Session } from './api.ts'
import { confirmDialog, h, notice, replace, when } from './dom.ts'

/** My login sessions (browsers and apps signed in with my password), and "log out everywhere". */
export async function sessionsPage(main: HTMLElement, signedOut: (message: string) => void): Promise<void> {
  const status = h('div', { class: 'status-area' })
  const list = h('div', { 'aria-busy': 'true' }, 'Loading…')
  const all = h('button', { type: 'button', class: 'danger' }, 'Log out everywhere')
  all.addEventListener('click', async () => {
    const go = await confirmDialog('Log out everywhere?', [h('p', {}, 'Every browser and app signed in with your password is signed out at once, this one too. API keys keep working.')], 'Log out everywhere', true)
    if (!go) return
    try {
      const ended = await api<{ sessions_ended: number }>('POST', '/logout-all')
      forget()
      signedOut(`Signed out everywhere (${ended.sessions_ended} session${ended.sessions_ended === 1 ? '' : 's'} ended).`)
    } catch (err) {
      replace(status, notice('error', (err as Error).message))
    }
  })
  replace(main, h('h1', { tabindex: '-1' }, 'Sessions'),
    h('p', { class: 'lead' }, 'Where you are signed in. A session lasts until you sign out or its refresh token expires unused.'),
    status, list, h('div', { class: 'actions' }, all))
  try {
    const sessions = await api<Session[]>('GET', '/sessions')
    replace(list, sessions.length
      ? h('table', {}, h('caption', { class: 'sr-only' }, 'Your sessions'),
        h('thead', {}, h('tr', {}, ...['Signed in', 'Last active', 'Ends'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Which')))),
        h('tbody', {}, ...sessions.map((s) => h('tr', {}, h('td', {}, when(s.created_at)), h('td', {}, when(s.last_used_at)), h('td', {}, when(s.expires_at)), h('td', {}, s.current ? h('span', { class: 'badge' }, 'This browser') : '')))))
      : h('p', { class: 'empty' }, 'No other sessions.'))
    list.removeAttribute('aria-busy')
  } catch (err) {
    replace(list, notice('error', (err as Error).message))
  }
}
