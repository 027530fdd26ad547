import { api, type User } from './api.ts'
import { field, h, notice, replace } from './dom.ts'

/** My profile (email, full name) and my password. */
export function profilePage(main: HTMLElement, user: User, updated: (u: User) => void): void {
  const email = h('input', { type: 'email', autocomplete: 'email', value: user.email, required: true })
  const fullName = h('input', { type: 'text', autocomplete: 'name', value: user.full_name ?? '', maxlength: 200 })
  const profileStatus = h('div', { class: 'status-area' })
  const profile = h('form', { class: 'card', 'aria-labelledby': 'profile-title', novalidate: true },
    h('h2', { id: 'profile-title' }, 'Profile'),
    h('p', {}, 'Username: ', h('strong', {}, user.username), user.is_superuser ? ' (superuser)' : '', user.is_verified ? '' : ' · email not verified'),
    profileStatus, field('Email', email), field('Full name', fullName),
    h('button', { type: 'submit', class: 'primary' }, 'Save profile'))
  profile.addEventListener('submit', async (e) => {
    e.preventDefault()
    try {
      const u = await api<User>('PUT', '/me', { email: email.value.trim(), full_name: fullName.value.trim() || null })
      updated(u)
      replace(profileStatus, notice('ok', 'Profile saved.'))
    } catch (err) {
      replace(profileStatus, notice('error', (err as Error).message))
    }
  })

  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true })
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 128 })
  const passwordStatus = h('div', { class: 'status-area' })
  const password = h('form', { class: 'card', 'aria-labelledby': 'password-title', novalidate: true },
    h('h2', { id: 'password-title' }, 'Password'),
    h('p', {}, 'Changing it signs out your other sessions and revokes your API keys: whoever knew the old password may have made keys with it.'),
    passwordStatus, field('Current password', current), field('New password', next, 'At least 8 characters.'),
    h('button', { type: 'submit', class: 'primary' }, 'Change password'))
  password.addEventListener('submit', async (e) => {
    e.preventDefault()
    try {
      await api('POST', '/change-password', { current_password: current.value, new_password: next.value })
      replace(passwordStatus, notice('ok', 'Password changed. Your other sessions were signed out and your API keys revoked.'))
    } catch (err) {
      replace(passwordStatus, notice('error', (err as Error).message))
    } finally {
      current.value = ''
      next.value = ''
    }
  })
  replace(main, h('h1', { tabindex: '-1' }, 'My profile'), profile, password)
}
