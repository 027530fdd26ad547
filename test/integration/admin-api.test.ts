import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

t.test('the admin API', async (t) => {
  const kg = await keygateOnPostgres('admin', { KEYGATE_REFRESH_REUSE_WINDOW_MS: '0', KEYGATE_MAX_KEYS_PER_USER: '3' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const login = (body: Record<string, unknown>) => call(kg.url, 'POST', '/api/v1/auth/login', { body })
  const admin = (await login(BOOTSTRAP)).json.access_token as string
  const bobCreated = await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: { username: 'bob', password: 'bob password 1', email: 'bob@example.com' } })
  t.equal(bobCreated.status, 201, 'a superuser creates a user')

  await t.test('login: unknown user and wrong password get the same answer', async (t) => {
    const wrong = await login({ username: 'bob', password: 'not his password' })
    const unknown = await login({ username: 'nobody', password: 'not his password' })
    t.equal(wrong.status, 401)
    t.equal(wrong.json.code, 'LOGIN_FAILED')
    t.equal(wrong.json.detail, 'Invalid username or password')
    t.same({ ...unknown.json, instance: undefined }, { ...wrong.json, instance: undefined }, 'identical bodies')
    t.equal((await login({ email: 'BOB@example.com', password: 'bob password 1' })).status, 200, 'login by email, case-insensitively')
  })

  await t.test('bad bodies are 422 naming the field, 400 for broken JSON, 413 when too large', async (t) => {
    const bob = (await login({ username: 'bob', password: 'bob password 1' })).json.access_token
    const cases: Array<[unknown, string]> = [
      [{ name: 'x'.repeat(101) }, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 42 }, 'name'],
      [{ name: 'ok', extra: true }, ''],
      [{ name: 'ok', expires_in_days: 0 }, 'expires_in_days'],
      [{ name: 'ok', expires_at: '2000-01-01T00:00:00Z' }, 'expires_at'],
      [{ name: "'; DROP TABLE api_keys; --", scopes: ['BAD SCOPE'] }, 'scopes'],
    ]
    for (const [body, field] of cases) {
      const res = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: bob, body })
      t.equal(res.status, 422, `${JSON.stringify(body).slice(0, 40)} → 422`)
      t.equal(res.json.code, 'VALIDATION_FAILED')
      t.ok(res.json.errors.some((e: { loc: string[] }) => e.loc[0] === 'body' && (field === '' || e.loc.includes(field))), `names ${field || 'the body'}`)
    }
    const broken = await fetch(`${kg.url}/api/v1/auth/api-key`, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' }, body: '{"name":' })
    t.equal(broken.status, 400)
    t.equal(((await broken.json()) as { code: string }).code, 'BODY_INVALID_JSON')
    const huge = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: bob, body: { name: 'x'.repeat(100_000) } })
    t.equal(huge.status, 413)
    t.equal(huge.json.code, 'BODY_TOO_LARGE')
    t.same((await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: bob })).json, [], 'nothing was created by any of them')
    const unicode = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: bob, body: { name: "Ключ ✓ '; DROP TABLE users; --" } })
    t.equal(unicode.status, 200, 'Unicode and SQL metacharacters in a name are just a name')
    t.equal(unicode.json.api_key_name, "Ключ ✓ '; DROP TABLE users; --")
  })

  await t.test('refresh rotates, and a spent refresh token presented again ends the session', async (t) => {
    const first = (await login({ username: 'bob', password: 'bob password 1' })).json
    const rotated = await call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: first.refresh_token } })
    t.equal(rotated.status, 200)
    t.not(rotated.json.refresh_token, first.refresh_token, 'a new refresh token')
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: rotated.json.access_token })).status, 200)
    const cookie = await fetch(`${kg.url}/api/v1/auth/refresh`, { method: 'POST', headers: { cookie: `refresh_token=${rotated.json.refresh_token}` } })
    t.equal(cookie.status, 200, 'the cookie works like the body')
    const reused = await call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: first.refresh_token } })
    t.equal(reused.status, 401)
    t.equal(reused.json.code, 'REFRESH_INVALID')
    const me = await call(kg.url, 'GET', '/api/v1/auth/me', { token: rotated.json.access_token })
    t.equal(me.status, 401, 'the whole family is dead: its access tokens too')
    t.equal(me.json.code, 'TOKEN_REVOKED')
    const newest = ((await cookie.json()) as { refresh_token: string }).refresh_token
    t.equal((await call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: newest } })).status, 401, 'and its newest refresh token')
  })

  await t.test('a refresh token is never an access token', async (t) => {
    const pair = (await login({ username: 'bob', password: 'bob password 1' })).json
    const res = await call(kg.url, 'GET', '/api/v1/auth/me', { token: pair.refresh_token })
    t.equal(res.status, 401)
  })

  await t.test('logout ends the refresh family and the access token', async (t) => {
    const pair = (await login({ username: 'bob', password: 'bob password 1' })).json
    const out = await call(kg.url, 'POST', '/api/v1/auth/logout', { token: pair.access_token })
    t.same(out.json, { message: 'Logged out successfully' })
    const after = await call(kg.url, 'GET', '/api/v1/auth/me', { token: pair.access_token })
    t.equal(after.status, 401)
    t.equal(after.json.code, 'TOKEN_REVOKED')
    t.equal((await call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: pair.refresh_token } })).status, 401)
  })

  await t.test('changing the password ends the other sessions and every key, not this session', async (t) => {
    const other = (await login({ username: 'bob', password: 'bob password 1' })).json.access_token
    const mine = (await login({ username: 'bob', password: 'bob password 1' })).json.access_token
    const bobsKey = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: mine, body: { name: 'before the change' } })).json.api_key
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: bobsKey })).status, 200)
    const viaKey = await call(kg.url, 'POST', '/api/v1/auth/change-password', { token: bobsKey, body: { current_password: 'bob password 1', new_password: 'bob password 2' } })
    t.equal(viaKey.status, 403, 'an API key cannot change the password')
    t.equal(viaKey.json.code, 'JWT_REQUIRED')
    const wrong = await call(kg.url, 'POST', '/api/v1/auth/change-password', { token: mine, body: { current_password: 'nope nope', new_password: 'bob password 2' } })
    t.equal(wrong.status, 401, 'a wrong current password is 401, as the original answered')
    t.equal(wrong.json.code, 'PASSWORD_INCORRECT')
    const ok = await call(kg.url, 'POST', '/api/v1/auth/change-password', { token: mine, body: { current_password: 'bob password 1', new_password: 'bob password 2' } })
    t.same(ok.json, { message: 'Password changed successfully' })
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: other })).status, 401, 'the other session ended')
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: mine })).status, 200, 'this one goes on')
    const keyAfter = await call(kg.url, 'GET', '/api/v1/auth/me', { token: bobsKey })
    t.equal(keyAfter.status, 401, 'the key minted before the change is revoked')
    t.equal(keyAfter.json.code, 'KEY_REVOKED')
    t.equal((await login({ username: 'bob', password: 'bob password 1' })).status, 401, 'the old password is dead')
    t.equal((await login({ username: 'bob', password: 'bob password 2' })).status, 200)
  })

  await t.test('another user\'s key id is not found, and revoke by id works on one\'s own', async (t) => {
    const bob = (await login({ username: 'bob', password: 'bob password 2' })).json.access_token
    const adminKey = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: admin, body: { name: 'admin key' } })).json
    const theft = await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${adminKey.id}`, { token: bob })
    t.equal(theft.status, 404)
    t.equal(theft.json.code, 'NOT_FOUND')
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: adminKey.api_key })).status, 200, 'the key still works')
    t.equal((await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${adminKey.id}`, { token: admin })).status, 200)
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: adminKey.api_key })).status, 401)
    t.equal((await call(kg.url, 'DELETE', '/api/v1/auth/api-keys/not-a-uuid', { token: admin })).status, 422)
  })

  await t.test('with several keys, DELETE /api-key with a JWT is ambiguous', async (t) => {
    const bob = (await login({ username: 'bob', password: 'bob password 2' })).json.access_token
    const mine = await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: bob })
    const active = mine.json.filter((k: { revoked_at: string | null }) => k.revoked_at === null).length
    for (let i = active; i < 2; i++) await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: bob, body: { name: `k${i}` } })
    const res = await call(kg.url, 'DELETE', '/api/v1/auth/api-key', { token: bob })
    t.equal(res.status, 409)
    t.equal(res.json.code, 'KEY_AMBIGUOUS')
  })

  await t.test('only a superuser administers users; registration is off by default', async (t) => {
    const bob = (await login({ username: 'bob', password: 'bob password 2' })).json.access_token
    const res = await call(kg.url, 'GET', '/api/v1/auth/users', { token: bob })
    t.equal(res.status, 403)
    t.equal(res.json.code, 'NOT_SUPERUSER')
    t.match((await call(kg.url, 'GET', '/api/v1/auth/users', { token: admin })).json, { total: 2, offset: 0, limit: 50 })
    const reg = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'eve', password: 'eve password', email: 'eve@example.com' } })
    t.equal(reg.status, 403)
    t.equal(reg.json.code, 'REGISTRATION_DISABLED')
    const dup = await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: { username: 'BOB', email: 'another-bob@example.com', password: 'whatever123' } })
    t.equal(dup.status, 409)
    t.equal(dup.json.code, 'USER_EXISTS')
  })

  await t.test('deactivating an account stops its JWT and its keys on the next request', async (t) => {
    await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: { username: 'carol', email: 'carol@example.com', password: 'carol password' } })
    const carol = (await login({ username: 'carol', password: 'carol password' })).json.access_token
    const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: carol, body: { name: 'c' } })).json.api_key
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200)
    t.equal((await call(kg.url, 'DELETE', '/api/v1/auth/account', { token: key })).json.code, 'JWT_REQUIRED', 'an API key cannot deactivate the account')
    const gone = await call(kg.url, 'DELETE', '/api/v1/auth/account', { token: carol })
    t.same(gone.json, { message: 'Account deactivated successfully' })
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 401, 'the key is refused')
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: carol })).status, 401, 'the JWT is refused')
    t.equal((await login({ username: 'carol', password: 'carol password' })).status, 401, 'login is refused')
  })

  await t.test('the audit trail records credential events without secrets', async (t) => {
    const res = await call(kg.url, 'GET', '/api/v1/auth/audit?limit=500', { token: admin })
    t.equal(res.status, 200)
    const events = new Set(res.json.map((e: { event: string }) => e.event))
    for (const e of ['login.succeeded', 'login.failed', 'key.created', 'key.revoked', 'logout', 'password.changed', 'user.deactivated', 'token.reuse_detected', 'user.created']) t.ok(events.has(e), `records ${e}`)
    t.notMatch(res.text, /sk_live_[0-9A-Za-z]{20}|password 1|eyJ/, 'no secret in the trail')
  })

  await t.test('the OpenAPI document is served', async (t) => {
    const doc = await call(kg.url, 'GET', '/api/v1/openapi.json')
    t.equal(doc.status, 200)
    t.equal(doc.json.openapi, '3.1.0')
    t.ok(doc.json.paths['/api/v1/auth/me'].get.operationId === 'getCurrentUserInfoApiV1AuthMeGet')
  })
})
