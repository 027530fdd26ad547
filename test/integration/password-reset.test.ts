import pg from 'pg'
import t from 'tap'
import { manualClock } from '../../core/clock.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { mailbox, resetTokenIn } from '../helpers/smtp-server.ts'

const API = '/api/v1/auth'

t.test('password reset by mail: a hashed, single-use, 15-minute token that ends every session but no key', async (t) => {
  const mail = await mailbox()
  const clock = manualClock(Date.now())
  const kg = await keygateOnPostgres('reset', { KEYGATE_SMTP_URL: mail.url, KEYGATE_MAIL_FROM: 'keygate@example.com' }, undefined, clock)
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await mail.close() })
  const admin = (await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).json.access_token as string
  const rita = { username: 'rita', email: 'rita@example.com', password: 'rita first password' }
  const created = await call(kg.url, 'POST', `${API}/users`, { token: admin, body: rita })
  const session = (await call(kg.url, 'POST', `${API}/login`, { body: rita })).json
  const key = (await call(kg.url, 'POST', `${API}/api-key`, { token: session.access_token, body: { name: 'rita key' } })).json.api_key as string
  const reset = (token: string, password: string) => call(kg.url, 'POST', `${API}/password-reset/confirm?token=${encodeURIComponent(token)}&new_password=${encodeURIComponent(password)}`)

  const unknown = await call(kg.url, 'POST', `${API}/password-reset/request?email=nobody%40example.com`)
  const known = await call(kg.url, 'POST', `${API}/password-reset/request?email=RITA%40example.com`)
  t.same([unknown.status, unknown.json], [known.status, known.json], 'the same answer for a known and an unknown address')
  const message = await mail.nextTo('rita@example.com')
  t.match(message.raw, /From: keygate@example\.com/i)
  const token = resetTokenIn(message)
  t.equal(mail.delivered.length, 0, 'no mail for the unknown address')

  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const stored = (await db.query(`SELECT token_hash FROM ${kg.db.schema}.password_reset_tokens`)).rows.map((r) => r.token_hash as string)
  t.equal(stored.length, 1)
  t.not(stored[0], token, 'the token is stored hashed')
  t.notOk(stored.some((h) => h.includes(token.slice(4, 20))))

  t.equal((await reset(token, 'short')).status, 422, 'the new password follows the password rules')
  t.equal((await reset('prt_made_up', 'rita second password')).json.code, 'RESET_TOKEN_INVALID')
  const ok = await reset(token, 'rita second password')
  t.equal(ok.status, 200)
  t.equal((await call(kg.url, 'GET', `${API}/me`, { token: session.access_token })).json.code, 'TOKEN_REVOKED', 'the session\'s access token is dead')
  t.equal((await call(kg.url, 'POST', `${API}/refresh`, { body: { refresh_token: session.refresh_token } })).status, 401, 'and its refresh token')
  t.equal((await call(kg.url, 'GET', `${API}/me`, { token: key })).status, 200, 'the API key stays valid')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: rita })).status, 401, 'the old password is dead')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: { ...rita, password: 'rita second password' } })).status, 200)
  t.equal((await reset(token, 'rita third password')).json.code, 'RESET_TOKEN_INVALID', 'a token works once')

  await call(kg.url, 'POST', `${API}/password-reset/request?email=rita%40example.com`)
  const late = resetTokenIn(await mail.nextTo('rita@example.com'))
  clock.advance(15 * 60_000 + 1000)
  t.equal((await reset(late, 'rita third password')).json.code, 'RESET_TOKEN_INVALID', 'a token older than 15 minutes is refused')

  const later = (await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).json.access_token as string
  const audit = (await call(kg.url, 'GET', `${API}/audit?user_id=${created.json.id}`, { token: later })).json.map((e: { event: string }) => e.event)
  t.ok(audit.includes('password_reset.requested') && audit.includes('password.reset'), 'the request and the reset are audited')
  t.same(kg.logs.filter((l) => l.includes(token.slice(4)) || l.includes(late.slice(4))), [], 'no token reaches a log line')
})

t.test('a reset that fails on the way (the password write refused) spends nothing: the same token works afterwards', async (t) => {
  const mail = await mailbox()
  const kg = await keygateOnPostgres('reset_fault', { KEYGATE_SMTP_URL: mail.url, KEYGATE_MAIL_FROM: 'keygate@example.com' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await mail.close() })
  const admin = (await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).json.access_token as string
  const tess = { username: 'tess', email: 'tess@example.com', password: 'tess first password' }
  t.equal((await call(kg.url, 'POST', `${API}/users`, { token: admin, body: tess })).status, 201)
  await call(kg.url, 'POST', `${API}/password-reset/request?email=tess%40example.com`)
  const token = resetTokenIn(await mail.nextTo('tess@example.com'))
  const reset = (password: string) => call(kg.url, 'POST', `${API}/password-reset/confirm?token=${encodeURIComponent(token)}&new_password=${encodeURIComponent(password)}`)

  // The password write fails as a statement cut by the statement timeout does (SQLSTATE 57014), after the token
  // was found usable and spent in the same transaction.
  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const s = kg.db.schema
  await db.query(`CREATE FUNCTION ${s}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'query_canceled'; END $$`)
  await db.query(`CREATE TRIGGER refuse BEFORE UPDATE OF password_hash ON ${s}.users FOR EACH ROW EXECUTE FUNCTION ${s}.refuse()`)
  const failed = await reset('tess second password')
  t.same([failed.status, failed.json.code], [503, 'DATABASE_UNAVAILABLE'])
  t.same((await db.query(`SELECT used_at FROM ${s}.password_reset_tokens`)).rows, [{ used_at: null }], 'the token is not spent')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: tess })).status, 200, 'the old password still works')

  await db.query(`DROP TRIGGER refuse ON ${s}.users`)
  t.equal((await reset('tess second password')).status, 200, 'the same token resets the password once the database takes it')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: { ...tess, password: 'tess second password' } })).status, 200)
  t.equal((await reset('tess third password')).json.code, 'RESET_TOKEN_INVALID', 'and then it is spent')
})

t.test('a superuser sets a password with PATCH /users/{id}: that user\'s sessions end, keys stay', async (t) => {
  const kg = await keygateOnPostgres('set_password')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const admin = (await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).json.access_token as string
  const sam = { username: 'sam', email: 'sam@example.com', password: 'sam first password' }
  const id = (await call(kg.url, 'POST', `${API}/users`, { token: admin, body: sam })).json.id as string
  const jwt = (await call(kg.url, 'POST', `${API}/login`, { body: sam })).json.access_token as string
  const key = (await call(kg.url, 'POST', `${API}/api-key`, { token: jwt, body: { name: 'sam key' } })).json.api_key as string
  t.equal((await call(kg.url, 'PATCH', `${API}/users/${id}`, { token: admin, body: { password: 'short' } })).status, 422)
  const set = await call(kg.url, 'PATCH', `${API}/users/${id}`, { token: admin, body: { password: 'sam second password' } })
  t.equal(set.status, 200)
  t.equal((await call(kg.url, 'GET', `${API}/me`, { token: jwt })).status, 401, 'the user\'s session ended')
  t.equal((await call(kg.url, 'GET', `${API}/me`, { token: key })).status, 200, 'the key stays valid')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: { ...sam, password: 'sam second password' } })).status, 200)
  t.equal((await call(kg.url, 'GET', `${API}/me`, { token: admin })).status, 200, 'the superuser\'s own session is untouched')
  const bobless = await call(kg.url, 'PATCH', `${API}/users/${id}`, { token: jwt, body: { password: 'sam third password' } })
  t.equal(bobless.status, 401)
})
