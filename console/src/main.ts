import { api, logout, refresh, whenSignedOut, type User } from './api.ts'
import { h, replace } from './dom.ts'
import { auditPage } from './page-audit.ts'
import { keysPage } from './page-keys.ts'
import { profilePage } from './page-profile.ts'
import { sessionsPage } from './page-sessions.ts'
import { signInPage } from './page-signin.ts'
import { usersPage } from './page-users.ts'

/**
 * The key console: pages addressed by the URL's fragment (`#/keys`), so reloads and the back button work; the
 * fragment never holds anything secret. A reload signs in again with the refresh cookie, if its session lives.
 */
const PAGES = [
  { path: '#/keys', label: 'My keys', superuser: false },
  { path: '#/sessions', label: 'Sessions', superuser: false },
  { path: '#/profile', label: 'Profile', superuser: false },
  { path: '#/users', label: 'Users', superuser: true },
  { path: '#/audit', label: 'Audit', superuser: true },
]

const main = document.getElementById('main') as HTMLElement
const nav = document.getElementById('nav') as HTMLElement
let me: User | null = null

function showNav(): void {
  if (!me) return replace(nav)
  const current = location.hash || '#/keys'
  const signOut = h('button', { type: 'button', class: 'link' }, 'Sign out')
  signOut.addEventListener('click', async () => {
    await logout().catch(() => {})
    signedOut('You are signed out.')
  })
  replace(nav, h('ul', {}, ...PAGES.filter((p) => !p.superuser || me!.is_superuser).map((p) =>
    h('li', {}, h('a', { href: p.path, 'aria-current': p.path === current ? 'page' : null }, p.label)))),
  h('span', { class: 'who' }, me.username), signOut)
}

function signedOut(message?: string): void {
  me = null
  showNav()
  signInPage(main, signedIn, message)
}

function signedIn(user: User): void {
  me = user
  if (!location.hash || location.hash === '#/signin') history.replaceState(null, '', '#/keys')
  void route()
}

async function route(): Promise<void> {
  if (!me) return signedOut()
  showNav()
  const hash = location.hash || '#/keys'
  const page = PAGES.find((p) => p.path === hash && (!p.superuser || me!.is_superuser)) ?? PAGES[0]!
  document.title = `${page.label} · Keygate console`
  if (page.path === '#/keys') await keysPage(main)
  else if (page.path === '#/sessions') await sessionsPage(main, signedOut)
  else if (page.path === '#/profile') profilePage(main, me, (u) => { me = u; showNav() })
  else if (page.path === '#/users') await usersPage(main, me)
  else await auditPage(main)
  // After navigation the page's heading takes the focus, so keyboard and screen-reader users start there.
  if (document.activeElement === document.body || nav.contains(document.activeElement)) main.querySelector<HTMLElement>('h1')?.focus()
}

async function start(): Promise<void> {
  whenSignedOut(() => signedOut('Your session ended. Sign in again.'))
  window.addEventListener('hashchange', () => void route())
  if (await refresh()) {
    try {
      me = await api<User>('GET', '/me')
    } catch {
      me = null
    }
  }
  if (me) await route()
  else signedOut()
}

void start()
