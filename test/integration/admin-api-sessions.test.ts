import t from 'tap'
import pg from 'pg'
import { BOOTSTRAP, call, keygateOnPglite, keygateOnPostgres } from '../helpers/keygate.ts'

/** `GET /sessions` and `POST /logout-all` (extensions): the live login sessions of a user, and ending all of them. */
const refreshCookie = (res: { headers: Headers }) => res.headers.getSetCookie().find((c) => c.startsWith('refresh_token='))

t.test('a user lists the live sessions and logs out everywhere: every token of every session dies, keys live on', async (t) => {
  const kg = await keygateOnPostgres('admin_sessions', { KEYGATE_MAX_KEYS_PER_USER: '5' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const logins = await Promise.all([1, 2, 3].map(() => call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })))
  const [a, b, c] = logins.map((l) => l.json as { access_token: string; refresh_token: string })
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: a!.access_token, body: { name: 'ci' } })).json
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/logout', { token: c!.access_token })).status, 200, 'one session logged out on its own')

  const listed = await call(kg.url, 'GET', '/api/v1/auth/sessions', { token: a!.access_token })
  t.equal(listed.status, 200)
  t.equal(listed.json.length, 2, 'the two live sessions, not the ended one')
  t.same(listed.json.map((s: { current: boolean }) => s.current).sort(), [false, true], 'the calling session is marked current')
  t.equal(listed.headers.get('cache-control'), 'no-store')
  for (const secret of [a!.access_token, a!.refresh_token, b!.refresh_token, key.api_key]) t.notOk(listed.text.includes(secret), 'no token or key in the listing')
  t.same(Object.keys(listed.json[0]).sort(), ['created_at', 'current', 'expires_at', 'id', 'last_used_at'])

  const viaKey = await call(kg.url, 'GET', '/api/v1/auth/sessions', { token: key.api_key })
  t.same([viaKey.status, viaKey.json.every((s: { current: boolean }) => !s.current)], [200, true], 'an API key lists them too; none is its own')

  const all = await call(kg.url, 'POST', '/api/v1/auth/logout-all', { token: b!.access_token })
  t.same([all.status, all.json], [200, { message: 'Logged out everywhere', sessions_ended: 2 }])
  t.match(refreshCookie(all), /^refresh_token=; .*Max-Age=0/, 'the caller\'s refresh cookie is cleared')
  for (const token of [a!.access_token, b!.access_token]) {
    const me = await call(kg.url, 'GET', '/api/v1/auth/me', { token })
    t.same([me.status, me.json.code], [401, 'TOKEN_REVOKED'], 'every access token of every session is refused')
  }
  for (const token of [a!.refresh_token, b!.refresh_token]) {
    const r = await call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: token } })
    t.same([r.status, r.json.code], [401, 'REFRESH_INVALID'], 'and every refresh token')
  }
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: key.api_key })).status, 200, 'API keys are not sessions: they stay valid')
  t.same((await call(kg.url, 'GET', '/api/v1/auth/sessions', { token: key.api_key })).json, [], 'nothing left to list')

  const fresh = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: fresh.access_token })).status, 200, 'a new login afterwards works at once')

  const audit = await call(kg.url, 'GET', '/api/v1/auth/audit?limit=20', { token: fresh.access_token })
  const event = audit.json.find((e: { event: string }) => e.event === 'logout.everywhere')
  t.match(event, { actor_user_id: fresh.user.id, subject_user_id: fresh.user.id, detail: { sessions_ended: 2, keys_revoked: 0 } }, 'audited, with what it ended')
})

t.test('log out everywhere needs the sessions:write scope from a scoped key, and changes nothing without it', async (t) => {
  const kg = await keygateOnPostgres('admin_sessions_scope', { KEYGATE_MAX_KEYS_PER_USER: '5' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const narrow = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'narrow', scopes: ['keys:read'] } })).json.api_key
  const allowed = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'sessions', scopes: ['sessions:write'] } })).json.api_key

  const refused = await call(kg.url, 'POST', '/api/v1/auth/logout-all', { token: narrow })
  t.same([refused.status, refused.json.code, refused.json.missing_scopes], [403, 'SCOPE_MISSING', ['sessions:write']])
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: jwt })).status, 200, 'the session lives on')

  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const live = async () => (await db.query(`SELECT count(*)::int AS n FROM ${kg.db.schema}.sessions WHERE revoked_at IS NULL`)).rows[0].n
  t.equal(await live(), 1)
  t.same((await call(kg.url, 'POST', '/api/v1/auth/logout-all', { token: allowed })).json, { message: 'Logged out everywhere', sessions_ended: 1 })
  t.equal(await live(), 0, 'with the scope it ends them')
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/logout-all', { token: allowed })).json.sessions_ended, 0, 'and again: nothing left, still 200')
})

t.test('on the embedded database too: sessions listed, all ended', async (t) => {
  const kg = await keygateOnPglite()
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const [a, b] = await Promise.all([1, 2].map(async () => (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string))
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/sessions', { token: a })).json.length, 2)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/logout-all', { token: a })).json.sessions_ended, 2)
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: b })).status, 401)
})
