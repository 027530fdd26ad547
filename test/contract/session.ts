import type { Test } from 'tap'
import { BOOTSTRAP } from '../helpers/keygate.ts'
import { contractValidator } from './contract.ts'

const API = '/api/v1/auth'
const conforms = contractValidator()

export interface Answer { status: number; headers: Headers; json: any }

/**
 * A full client session as an existing generated client runs it, every answer validated against the contract's
 * shapes (`schemas.json`): logins by username, by email and by email-in-username, keys created, listed, revoked
 * and revoked again, `/me` with a key and a JWT, `PUT /me` with every field, the users list, change-password
 * wrong and right, refresh by cookie, password reset, register, logout, and the error bodies on the way.
 * `options.registration` says whether the instance has registration on; `options.reset` runs the reset flow
 * (given the instance's way to read the token the mail carried) or expects 501 without SMTP.
 */
export async function clientSession(t: Test, base: string, options: { registration: boolean; resetToken?: (email: string) => Promise<string> }) {
  let step = 0
  async function call(method: string, path: string, expect: { status: number; shape: string }, init: { token?: string; body?: unknown; cookie?: string } = {}): Promise<Answer> {
    const headers: Record<string, string> = {}
    if (init.token) headers.authorization = `Bearer ${init.token}`
    if (init.cookie) headers.cookie = init.cookie
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(base + API + path, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
    const text = await res.text()
    const json = text ? JSON.parse(text) : undefined
    const label = `${++step}. ${method} ${path} → ${expect.status} ${expect.shape}`
    t.equal(res.status, expect.status, label)
    const media = (res.headers.get('content-type') ?? '').split(';')[0]
    t.equal(media, expect.shape === 'Problem' ? 'application/problem+json' : 'application/json', `${label}: content type`)
    t.same(conforms(expect.shape, json), [], `${label}: the body conforms`)
    return { status: res.status, headers: res.headers, json }
  }
  const problem = (status: number) => ({ status, shape: 'Problem' })

  // --- logins -------------------------------------------------------------------------------------------
  const admin = await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: BOOTSTRAP.username, password: BOOTSTRAP.password } })
  t.match(admin.headers.get('set-cookie') ?? '', /refresh_token=[^;]+;.*HttpOnly; Secure; SameSite=Strict/)
  const adminJwt = admin.json.access_token as string
  const bob = { username: 'bob_contract', email: 'bob.contract@example.com', password: 'bob contract password' }
  const created = await call('POST', '/users', { status: 201, shape: 'UserResponse' }, { token: adminJwt, body: bob })
  t.equal(created.json.email, bob.email)
  const byEmail = await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { email: bob.email, password: bob.password } })
  t.equal(byEmail.json.user.id, created.json.id, 'login by email')
  const inUsername = await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: bob.email.toUpperCase(), password: bob.password } })
  t.equal(inUsername.json.user.id, created.json.id, 'an email in the username field is looked up as an email')
  const both = await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: bob.username, email: null, password: bob.password, remember_me: true } })
  t.equal(both.json.user.id, created.json.id, 'email may be null')
  await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: null, email: bob.email, password: bob.password } })
  await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: bob.username, email: 'someone.else@example.com', password: bob.password } })
  const neither = await call('POST', '/login', problem(422), { body: { username: null, email: null, password: bob.password } })
  t.ok(neither.json.errors?.length, 'a 422 lists its errors')
  const wrong = await call('POST', '/login', problem(401), { body: { username: bob.username, password: 'not the password' } })
  t.match(wrong.json, { code: 'LOGIN_FAILED', title: 'Authentication Required', detail: 'Invalid username or password' })
  let jwt = byEmail.json.access_token as string

  // --- API keys -----------------------------------------------------------------------------------------
  const key = await call('POST', '/api-key', { status: 200, shape: 'APIKeyCreated' }, { token: jwt, body: { name: 'contract key' } })
  const listed = await call('GET', '/api-keys', { status: 200, shape: 'APIKeyList' }, { token: key.json.api_key })
  t.same(listed.json.map((k: { id: string }) => k.id), [key.json.id])
  const second = await call('POST', '/api-key', problem(409), { token: jwt, body: { name: 'second' } })
  t.equal(second.json.detail, 'User already has an API key. Revoke existing key first.')
  const meByKey = await call('GET', '/me', { status: 200, shape: 'UserResponse' }, { token: key.json.api_key })
  t.equal(meByKey.json.api_key_name, 'contract key')
  await call('GET', '/me', { status: 200, shape: 'UserResponse' }, { token: jwt })
  const revoked = await call('DELETE', '/api-key', { status: 200, shape: 'Message' }, { token: key.json.api_key })
  t.same(revoked.json, { message: 'API key revoked successfully' })
  const again = await call('DELETE', '/api-key', { status: 200, shape: 'Message' }, { token: jwt })
  t.same(again.json, { message: 'API key revoked successfully' }, 'revoking again is the same 200')
  t.same((await call('GET', '/api-keys', { status: 200, shape: 'APIKeyList' }, { token: jwt })).json, [], 'no usable key left')
  t.equal((await call('GET', '/api-keys?include_revoked=true', { status: 200, shape: 'APIKeyList' }, { token: jwt })).json.length, 1)
  const dead = await call('GET', '/me', problem(401), { token: key.json.api_key })
  t.match(dead.json, { title: 'Authentication Required', detail: 'Invalid token or API key' })
  t.equal(dead.headers.get('www-authenticate'), 'Bearer error="invalid_token"')

  // --- profile and users --------------------------------------------------------------------------------
  const every = { email: 'bob.new@example.com', full_name: 'Bob Contract', bio: 'About Bob', avatar_url: 'https://example.com/bob.png', phone_number: '+49 30 1234', default_llm_provider: 'anthropic', default_profile_id: 'profile-7' }
  const put = await call('PUT', '/me', { status: 200, shape: 'UserResponse' }, { token: jwt, body: every })
  t.match(put.json, every, 'every field stored and returned')
  const bad = await call('PUT', '/me', problem(422), { token: jwt, body: { phone_number: '1'.repeat(21) } })
  t.same(bad.json.errors.map((e: { loc: string[] }) => e.loc.join('.')), ['body.phone_number'])
  const users = await call('GET', '/users?limit=1000', { status: 200, shape: 'UserListResponse' }, { token: adminJwt })
  t.match(users.json, { offset: 0, limit: 500 })
  t.ok(users.json.total >= 2)
  const forbidden = await call('GET', '/users', problem(403), { token: jwt })
  t.equal(forbidden.json.code, 'NOT_SUPERUSER')
  const none = await call('GET', '/me', problem(401))
  t.match(none.json, { title: 'Authentication Required', detail: 'Authentication credentials required' })

  // --- passwords and tokens -----------------------------------------------------------------------------
  const wrongCurrent = await call('POST', '/change-password', problem(401), { token: jwt, body: { current_password: 'not it at all', new_password: 'bob second password' } })
  t.equal(wrongCurrent.json.code, 'PASSWORD_INCORRECT')
  const changed = await call('POST', '/change-password', { status: 200, shape: 'Message' }, { token: jwt, body: { current_password: bob.password, new_password: 'bob second password' } })
  t.same(changed.json, { message: 'Password changed successfully' })
  const cookie = (byEmail.headers.get('set-cookie') ?? '').split(';')[0]!
  const refreshed = await call('POST', '/refresh', { status: 200, shape: 'TokenRefreshResponse' }, { cookie })
  jwt = refreshed.json.access_token
  t.match(refreshed.headers.get('set-cookie') ?? '', /refresh_token=[^;]+;.*HttpOnly/, 'the rotated cookie')
  await call('POST', '/refresh', problem(401), { body: { refresh_token: 'rt_not_a_real_token' } })

  if (options.resetToken) {
    const requested = await call('POST', `/password-reset/request?email=${encodeURIComponent(every.email)}`, { status: 200, shape: 'Message' })
    t.same(requested.json, { message: 'Password reset email sent if account exists' })
    const unknown = await call('POST', '/password-reset/request?email=nobody%40example.com', { status: 200, shape: 'Message' })
    t.same(unknown.json, requested.json, 'the same answer for an unknown address')
    const token = await options.resetToken(every.email)
    const confirmed = await call('POST', `/password-reset/confirm?token=${encodeURIComponent(token)}&new_password=${encodeURIComponent('bob third password')}`, { status: 200, shape: 'Message' })
    t.ok(confirmed.json.message)
    await call('POST', `/password-reset/confirm?token=${encodeURIComponent(token)}&new_password=${encodeURIComponent('bob fourth password')}`, problem(400))
    await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { username: bob.username, password: 'bob third password' } })
    jwt = (await call('POST', '/login', { status: 200, shape: 'TokenResponse' }, { body: { email: every.email, password: 'bob third password' } })).json.access_token
  } else {
    const unavailable = await call('POST', `/password-reset/request?email=${encodeURIComponent(every.email)}`, problem(501))
    t.equal(unavailable.json.code, 'PASSWORD_RESET_UNAVAILABLE')
    t.equal((await call('POST', '/password-reset/confirm?token=x&new_password=whatever123', problem(501))).json.code, 'PASSWORD_RESET_UNAVAILABLE')
  }

  // --- register, logout ---------------------------------------------------------------------------------
  const newcomer = { username: 'nora_contract', email: 'nora@example.com', password: 'nora contract password', full_name: 'Nora', bio: null, avatar_url: null, phone_number: '+1 555' }
  if (options.registration) {
    const reg = await call('POST', '/register', { status: 201, shape: 'TokenResponse' }, { body: newcomer })
    t.match(reg.json.user, { username: newcomer.username, email: newcomer.email, phone_number: '+1 555', is_verified: false })
  } else {
    t.equal((await call('POST', '/register', problem(403), { body: newcomer })).json.code, 'REGISTRATION_DISABLED')
  }
  const out = await call('POST', '/logout', { status: 200, shape: 'Message' }, { token: jwt })
  t.same(out.json, { message: 'Logged out successfully' })
  await call('GET', '/me', problem(401), { token: jwt })
}
