import t from 'tap'
import { BOOTSTRAP, call, refusedWithin } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'

t.test('two gateway processes on one PostgreSQL server without Redis: revocations reach the other through LISTEN/NOTIFY', async (t) => {
  const schema = await testSchema('inval_pg')
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, KEYGATE_MAX_KEYS_PER_USER: '5' }
  const [a, b] = await Promise.all([spawnKeygate(env), spawnKeygate(env)])
  t.teardown(async () => { await Promise.all([a.stop(), b.stop()]); await schema.drop() })
  const jwtA = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token

  await t.test('a key cached on B and revoked through A is refused by B', async (t) => {
    const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwtA, body: { name: 'k1' } })).json
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'B has it cached')
    t.equal((await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwtA })).status, 200)
    const seen = await refusedWithin(b.url, key.api_key, 1000)
    t.equal(seen.status, 401, `refused by B after ${seen.afterMs.toFixed(1)} ms`)
    t.equal(seen.code, 'KEY_REVOKED')
  })

  await t.test('a JWT logged out through A is refused by B', async (t) => {
    const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 200)
    t.equal((await call(a.url, 'POST', '/api/v1/auth/logout', { token: jwt })).status, 200)
    const seen = await refusedWithin(b.url, jwt, 1000)
    t.equal(seen.status, 401, `refused by B after ${seen.afterMs.toFixed(1)} ms`)
    t.equal(seen.code, 'TOKEN_REVOKED')
  })

  await t.test('a deactivated user\'s key and JWT are refused by B', async (t) => {
    await call(a.url, 'POST', '/api/v1/auth/users', { token: jwtA, body: { username: 'dave', email: 'dave@example.com', password: 'dave password' } })
    const dave = (await call(a.url, 'POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'dave password' } })).json
    const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: dave.access_token, body: { name: 'd' } })).json
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200)
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: dave.access_token })).status, 200)
    t.equal((await call(a.url, 'PATCH', `/api/v1/auth/users/${dave.user.id}`, { token: jwtA, body: { is_active: false } })).status, 200)
    for (const token of [key.api_key, dave.access_token]) {
      const seen = await refusedWithin(b.url, token, 1000)
      t.equal(seen.status, 401, `refused by B after ${seen.afterMs.toFixed(1)} ms`)
    }
  })

  await t.test('log out everywhere through A ends every session on B', async (t) => {
    const one = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    const two = (await call(b.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    for (const token of [one, two]) t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token })).status, 200, 'B has the session cached')
    t.equal((await call(a.url, 'POST', '/api/v1/auth/logout-all', { token: one })).status, 200)
    for (const token of [one, two]) {
      const seen = await refusedWithin(b.url, token, 1000)
      t.same([seen.status, seen.code], [401, 'TOKEN_REVOKED'], `refused by B after ${seen.afterMs.toFixed(1)} ms`)
    }
  })
})
