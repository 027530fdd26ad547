import t from 'tap'
import { BOOTSTRAP, BOOTSTRAP_EMAIL, call, keygateOnPostgres } from '../helpers/keygate.ts'

const USER_FIELDS = ['id', 'email', 'username', 'full_name', 'bio', 'avatar_url', 'phone_number', 'is_active', 'is_verified', 'is_superuser', 'default_llm_provider', 'default_profile_id', 'daily_message_limit', 'monthly_message_limit', 'max_file_size_mb', 'api_key_name', 'created_at', 'updated_at', 'last_login_at']

t.test('every answer that carries a user has every UserResponse field, with the contract\'s types', async (t) => {
  const kg = await keygateOnPostgres('contract', { KEYGATE_ALLOW_REGISTRATION: 'true', KEYGATE_MAX_KEYS_PER_USER: '2' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const admin = login.json.access_token as string
  t.same(Object.keys(login.json.user).sort(), [...USER_FIELDS].sort(), 'login')
  t.match(login.json.user, { email: BOOTSTRAP_EMAIL, is_verified: false, api_key_name: null, bio: null })

  const reg = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'nina', email: 'nina@example.com', password: 'nina password', bio: 'hello', avatar_url: 'https://example.com/a.png', phone_number: '+4912345' } })
  t.equal(reg.status, 201)
  t.same(Object.keys(reg.json.user).sort(), [...USER_FIELDS].sort(), 'register')
  t.match(reg.json.user, { bio: 'hello', avatar_url: 'https://example.com/a.png', phone_number: '+4912345' })
  const nina = reg.json.access_token as string

  const every = { email: 'Nina.New@example.com', full_name: 'Nina N', bio: 'b'.repeat(1000), avatar_url: 'https://example.com/n.png', phone_number: '+1 555 0100', default_llm_provider: 'openai', default_profile_id: 'p-1' }
  const put = await call(kg.url, 'PUT', '/api/v1/auth/me', { token: nina, body: every })
  t.equal(put.status, 200)
  t.match(put.json, { ...every, email: 'nina.new@example.com' }, 'PUT /me stores every field (the email in canonical form)')
  t.equal((await call(kg.url, 'PUT', '/api/v1/auth/me', { token: nina, body: { email: null } })).status, 422, 'the email cannot be removed')
  t.equal((await call(kg.url, 'PUT', '/api/v1/auth/me', { token: nina, body: { bio: 'b'.repeat(1001) } })).json.code, 'VALIDATION_FAILED')
  const cleared = await call(kg.url, 'PUT', '/api/v1/auth/me', { token: nina, body: { bio: null } })
  t.equal(cleared.json.bio, null, 'null clears a profile field')
  t.equal(cleared.json.phone_number, every.phone_number, 'and leaves the others')

  const key = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: nina, body: { name: 'first key' } })
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: key.json.api_key })).json.api_key_name, 'first key', 'api_key_name names the usable key')
  await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: nina, body: { name: 'second key' } })
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: nina })).json.api_key_name, 'second key', 'the newest when several')

  const patched = await call(kg.url, 'PATCH', `/api/v1/auth/users/${reg.json.user.id}`, { token: admin, body: { is_verified: true, daily_message_limit: 100, monthly_message_limit: 2000, max_file_size_mb: 25 } })
  t.equal(patched.status, 200)
  t.match(patched.json, { is_verified: true, daily_message_limit: 100, monthly_message_limit: 2000, max_file_size_mb: 25, api_key_name: 'second key' }, 'a superuser sets is_verified and the limits')

  const list = await call(kg.url, 'GET', '/api/v1/auth/users?limit=100000', { token: admin })
  t.equal(list.status, 200)
  t.match(list.json, { total: 2, offset: 0, limit: 500 }, 'an over-large limit is clamped, and the envelope says so')
  t.same(list.json.users.map((u: { username: string }) => u.username), ['nina', BOOTSTRAP.username], 'newest first')
  t.same(Object.keys(list.json.users[0]).sort(), [...USER_FIELDS].sort(), 'users list')
  t.match((await call(kg.url, 'GET', '/api/v1/auth/users', { token: admin })).json, { limit: 50, offset: 0 }, 'limit defaults to 50')
  t.match((await call(kg.url, 'GET', '/api/v1/auth/users?offset=1', { token: admin })).json, { total: 2, offset: 1, users: [{ username: BOOTSTRAP.username }] })
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: { username: 'omar', password: 'omar password' } })).json.errors[0].loc.join('.'), 'body.email', 'POST /users requires an email')
})

t.test('the key listing shows usable keys only unless include_revoked=true, and DELETE /api-key is idempotent', async (t) => {
  const kg = await keygateOnPostgres('contract_keys')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const first = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'one' } })).json
  t.same(await call(kg.url, 'DELETE', '/api/v1/auth/api-key', { token: jwt }).then((r) => [r.status, r.json]), [200, { message: 'API key revoked successfully' }], 'the only key is revoked')
  const again = await call(kg.url, 'DELETE', '/api/v1/auth/api-key', { token: jwt })
  t.same([again.status, again.json], [200, { message: 'API key revoked successfully' }], 'with no active key: the same 200')
  const second = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'two' } })).json
  t.same((await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: jwt })).json.map((k: { id: string }) => k.id), [second.id], 'usable keys only')
  t.same((await call(kg.url, 'GET', '/api/v1/auth/api-keys?include_revoked=true', { token: jwt })).json.map((k: { id: string }) => k.id), [first.id, second.id], 'include_revoked adds the revoked one')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/api-keys?include_revoked=maybe', { token: jwt })).status, 422)
  t.equal((await call(kg.url, 'DELETE', '/api/v1/auth/api-key', { token: second.api_key })).status, 200, 'revoking with the key itself')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: second.api_key })).status, 401, 'which then stops working')
})
