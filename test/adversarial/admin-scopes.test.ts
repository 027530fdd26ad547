import t from 'tap'
import pg from 'pg'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Scopes on the admin API: a key created with `scopes: ["reports:read"]` must not act with its owner's full
 * powers there (mint an unrestricted key, create a superuser, deactivate users, read the audit trail). Every
 * refusal is 403 SCOPE_MISSING and changes nothing; a key never creates or rolls a key wider than itself.
 */
t.test('a scoped API key acts on the admin API only within the admin scopes it holds', async (t) => {
  const { kg } = await echoGateway(t, 'adv_admin_scopes', { routes: '- { name: reports, prefix: /reports, upstream: echo, scopes: [reports:read] }', env: { KEYGATE_MAX_KEYS_PER_USER: '20' } })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const newKey = async (name: string, scopes?: string[], token = jwt) => call(kg.url, 'POST', '/api/v1/auth/api-key', { token, body: scopes ? { name, scopes } : { name } })
  const unscoped = (await newKey('unscoped')).json
  const reports = (await newKey('reports', ['reports:read'])).json
  const bob = (await call(kg.url, 'POST', '/api/v1/auth/users', { token: jwt, body: { username: 'bob', email: 'bob@example.com', password: 'bob has a long password' } })).json

  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const state = async () => (await db.query(`SELECT (SELECT count(*) FROM ${kg.db.schema}.users)::int AS users, (SELECT count(*) FROM ${kg.db.schema}.api_keys)::int AS keys,
    (SELECT count(*) FROM ${kg.db.schema}.users WHERE is_active AND NOT is_superuser)::int AS active_plain, (SELECT count(*) FROM ${kg.db.schema}.api_keys WHERE revoked_at IS NULL)::int AS live_keys`)).rows[0]

  t.equal((await call(kg.url, 'GET', '/reports/q', { token: reports.api_key })).status, 200, 'the key works on its data-plane route')

  const before = await state()
  const attempts: Array<[string, string, string, unknown?]> = [
    ['mint an unrestricted key', 'POST', '/api/v1/auth/api-key', { name: 'escalate' }],
    ['mint a key with another scope', 'POST', '/api/v1/auth/api-key', { name: 'escalate', scopes: ['reports:write'] }],
    ['list keys', 'GET', '/api/v1/auth/api-keys'],
    ['roll the unrestricted key', 'POST', `/api/v1/auth/api-keys/${unscoped.id}/roll`, {}],
    ['revoke another key', 'DELETE', `/api/v1/auth/api-keys/${unscoped.id}`],
    ['revoke itself through the contract endpoint', 'DELETE', '/api/v1/auth/api-key'],
    ['create a superuser', 'POST', '/api/v1/auth/users', { username: 'mallory', email: 'mallory@example.com', password: 'mallory has a password', is_superuser: true }],
    ['list users', 'GET', '/api/v1/auth/users'],
    ['deactivate a user', 'PATCH', `/api/v1/auth/users/${bob.id}`, { is_active: false }],
    ['read the audit trail', 'GET', '/api/v1/auth/audit'],
    ['change the profile', 'PUT', '/api/v1/auth/me', { full_name: 'Mallory' }],
  ]
  for (const [what, method, path, body] of attempts) {
    const res = await call(kg.url, method, path, { token: reports.api_key, body })
    t.equal(res.status, 403, `${what}: 403`)
    t.equal(res.json?.code, 'SCOPE_MISSING', `${what}: SCOPE_MISSING`)
  }
  t.same(await state(), before, 'nothing changed: no user, no key, no deactivation, no revocation')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: reports.api_key })).status, 200, 'GET /me takes any credential')

  // A key with keys:write creates and rolls keys no wider than itself.
  const writer = (await newKey('writer', ['keys:write', 'reports:read'])).json
  const narrower = await newKey('narrower', ['reports:read'], writer.api_key)
  t.equal(narrower.status, 200, 'keys:write creates a key within its own scopes')
  t.same(narrower.json.scopes, ['reports:read'])
  for (const [what, scopes] of [['a scope it lacks', ['reports:write']], ['no scopes (unrestricted)', undefined], ['an admin scope it lacks', ['users:admin']]] as const) {
    const res = await newKey('wider', scopes as string[] | undefined, writer.api_key)
    t.same([res.status, res.json?.code], [403, 'SCOPE_MISSING'], `keys:write cannot create a key with ${what}`)
  }
  const rollWide = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${unscoped.id}/roll`, { token: writer.api_key, body: {} })
  t.same([rollWide.status, rollWide.json?.code], [403, 'SCOPE_MISSING'], 'nor roll an unrestricted key into a secret it would then hold')
  const rolled = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${narrower.json.id}/roll`, { token: writer.api_key, body: {} })
  t.equal(rolled.status, 200, 'it rolls a key within its scopes')
  t.same(rolled.json.scopes, ['reports:read'], 'rolling keeps the scopes')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/users', { token: writer.api_key })).json?.code, 'SCOPE_MISSING', 'keys:write is not users:admin')

  // Named admin scopes open their operations; a login token and an unscoped key hold them all.
  const admin = (await newKey('admin', ['users:admin', 'audit:read', 'keys:read'])).json
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/users', { token: admin.api_key })).status, 200, 'users:admin lists users (for a superuser)')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/audit', { token: admin.api_key })).status, 200, 'audit:read reads the audit trail')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: admin.api_key })).status, 200, 'keys:read lists keys')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/audit', { token: unscoped.api_key })).status, 200, 'an unscoped key holds every admin scope')
  t.equal((await newKey('from-unscoped', undefined, unscoped.api_key)).status, 200, 'an unscoped key creates an unscoped key')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/users', { token: jwt })).status, 200, 'a login token holds every admin scope')
})
