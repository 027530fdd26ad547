import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

t.test('registration when enabled, the profile, and each user\'s own audit trail', async (t) => {
  const kg = await keygateOnPostgres('profile', { KEYGATE_ALLOW_REGISTRATION: 'true' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })

  const reg = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'jane', password: 'jane password', email: 'jane@example.com', full_name: 'Jane Doe' } })
  t.equal(reg.status, 201, 'registration answers 201 with tokens')
  t.match(reg.json, { token_type: 'bearer', user: { username: 'jane', email: 'jane@example.com', full_name: 'Jane Doe', is_superuser: false } })
  const jane = reg.json.access_token
  const again = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'JANE', password: 'other password', email: 'x@example.com' } })
  t.equal(again.status, 409, 'usernames are unique regardless of case')
  const invalid = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'no spaces allowed', password: 'short', email: 'not-an-email' } })
  t.equal(invalid.status, 422)
  t.same(invalid.json.errors.map((e: { loc: string[] }) => e.loc.join('.')).sort(), ['body.email', 'body.password', 'body.username'], 'every bad field is named')

  const updated = await call(kg.url, 'PUT', '/api/v1/auth/me', { token: jane, body: { full_name: 'Jane Q. Doe' } })
  t.equal(updated.status, 200)
  t.equal(updated.json.full_name, 'Jane Q. Doe')
  t.equal(updated.json.email, 'jane@example.com', 'fields not sent are kept')
  const admin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  await call(kg.url, 'PUT', '/api/v1/auth/me', { token: admin, body: { email: 'admin@example.com' } })
  const taken = await call(kg.url, 'PUT', '/api/v1/auth/me', { token: jane, body: { email: 'ADMIN@example.com' } })
  t.equal(taken.status, 409, 'an email already in use is refused')
  t.equal(taken.json.code, 'USER_EXISTS')

  const own = await call(kg.url, 'GET', '/api/v1/auth/audit', { token: jane })
  t.equal(own.status, 200)
  t.ok(own.json.length > 0)
  const janeId = reg.json.user.id
  t.ok(own.json.every((e: { subject_user_id: string | null; actor_user_id: string | null }) => e.subject_user_id === janeId || e.actor_user_id === janeId), 'a user sees only their own events')
  const others = await call(kg.url, 'GET', `/api/v1/auth/audit?user_id=${(await call(kg.url, 'GET', '/api/v1/auth/me', { token: admin })).json.id}`, { token: jane })
  t.equal(others.status, 403, 'and cannot ask for anyone else\'s')
  const page = await call(kg.url, 'GET', '/api/v1/auth/audit?limit=2', { token: admin })
  t.equal(page.json.length, 2)
  const next = await call(kg.url, 'GET', `/api/v1/auth/audit?limit=2&before=${page.json[1].id}`, { token: admin })
  t.ok(Number(next.json[0].id) < Number(page.json[1].id), 'paging with before goes back in time')
})
