import { ApiError, login, type User } from './api.ts'
import { field, h, notice, replace } from './dom.ts'

/** Sign in with a username or an email (one box, as the API takes it) and a password. */
export function signInPage(main: HTMLElement, signedIn: (user: User) => void, message?: string): void {
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })
  const status = h('div', { class: 'status-area' }, message ? notice('ok', message) : null)
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in')
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'signin-title', novalidate: true },
    h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in to Keygate'),
    status,
    field('Username', username, 'Your username or email address.'),
    field('Password', password),
    submit)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (!username.value.trim() || !password.value) {
      replace(status, notice('error', 'Enter your username (or email) and password.'))
      ;(username.value.trim() ? password : username).focus()
      return
    }
    submit.disabled = true
    try {
      const user = await login(username.value.trim(), password.value)
      password.value = ''
      signedIn(user)
    } catch (err) {
      const e = err as ApiError
      password.value = ''
      replace(status, notice('error', e.status === 429 ? 'Too many attempts. Wait a few minutes, then try again.' : e.message))
      password.focus()
    } finally {
      submit.disabled = false
    }
  })
  replace(main, form)
  username.focus()
}
