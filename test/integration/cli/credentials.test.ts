import t from 'tap'
import { cli } from '../../helpers/cli.ts'
import { call, keygateOnPostgres } from '../../helpers/keygate.ts'
import { testSchema } from '../../helpers/postgres.ts'

// This file runs the CLI a dozen times, each its own process: 25-45 s alone on two cores, up to two
// minutes while the suite's other files share them, so its own limit is longer than the suite's 120 s.
t.setTimeout(300_000)

const KEY = /^sk_live_[0-9A-Za-z]{49}$/

t.test('keys create prints the key alone on stdout, and a running gateway accepts it', async (t) => {
  const schema = await testSchema('cli_keys')
  const kg = await keygateOnPostgres('cli_keys', {}, schema)
  t.teardown(async () => { await kg.close(); await schema.drop() })
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema }
  t.equal((await cli(['users', 'create', '--username', 'ivy', '--email', 'ivy@example.com'], env, 'ivy password\n')).code, 0)

  const created = await cli(['keys', 'create', '--username', 'ivy', '--name', 'provisioning', '--scopes', 'conversations:read', '--expires-in-days', '30'], env)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /^sk_live_\w+\n$/, 'stdout is the key and a newline, nothing else')
  const key = created.stdout.trim()
  t.match(key, KEY)
  t.match(created.stderr, `database: PostgreSQL 127.0.0.1:5432/test, schema ${schema.schema}`, 'stderr says which database')
  const id = /created key ([0-9a-f-]{36}) \(sk_live_\w{4}…\w{4}\) for ivy, expires \d{4}-/.exec(created.stderr)?.[1]
  t.ok(id, 'stderr names the key by id and display form')
  t.notMatch(created.stderr, key, 'the secret is not on stderr')

  const listed = await cli(['keys', 'list', '--username', 'ivy'], env)
  t.match(listed.stdout, `${id}  `)
  const me = await call(kg.url, 'GET', '/api/v1/auth/me', { token: key })
  t.not(me.status, 401, 'the gateway knows the key')
  const tooWide = await cli(['keys', 'create', '--username', 'ivy', '--name', 'x', '--scopes', 'NOT A SCOPE'], env)
  t.equal(tooWide.code, 1, 'an invalid scope is refused')
  t.equal(tooWide.stdout, '')
  const nobody = await cli(['keys', 'create', '--username', 'nobody', '--name', 'x'], env)
  t.equal(nobody.code, 1)
  t.match(nobody.stderr, /no user named nobody/)
  t.equal(nobody.stdout, '')
})

t.test('users set-password takes the password from stdin and ends the sessions and keys on a running gateway at once', async (t) => {
  const schema = await testSchema('cli_password')
  const kg = await keygateOnPostgres('cli_password', {}, schema)
  t.teardown(async () => { await kg.close(); await schema.drop() })
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema }
  t.equal((await cli(['users', 'create', '--username', 'jack', '--email', 'jack@example.com'], env, 'old password\n')).code, 0)
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'jack', password: 'old password' } })).json.access_token
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json.api_key
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 200, 'the session works, and is cached')
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200, 'the key works, and is cached')

  const short = await cli(['users', 'set-password', '--username', 'jack'], env, 'short\n')
  t.equal(short.code, 1, 'a password the admin API would refuse is refused')
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 200, 'and nothing changed')

  const set = await cli(['users', 'set-password', '--username', 'jack'], env, 'new password\n')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /password of jack set: 1 sessions ended, 1 API keys revoked/)
  t.notMatch(set.stdout + set.stderr, /new password|old password/, 'no password is echoed')
  const session = await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })
  t.equal(session.status, 401, 'the old session is refused on the next request')
  const revoked = await call(kg.url, 'GET', '/api/v1/conversations', { token: key })
  t.equal(revoked.status, 401)
  t.equal(revoked.json.code, 'KEY_REVOKED', 'the key is refused on the next request')
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'jack', password: 'old password' } })).status, 401, 'the old password no longer logs in')
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'jack', password: 'new password' } })).status, 200, 'the new one does')
})
