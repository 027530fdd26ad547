import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { cli } from '../../helpers/cli.ts'
import { call, keygateOnPostgres } from '../../helpers/keygate.ts'
import { testSchema } from '../../helpers/postgres.ts'
import { testRedisPrefix } from '../../helpers/redis.ts'

// This file runs the CLI a dozen times, each its own process: 25-45 s alone on two cores, up to two
// minutes while the suite's other files share them, so its own limit is longer than the suite's 120 s.
t.setTimeout(300_000)

/** Revocations by the CLI reach a running gateway over the transport `transport` sets up (LISTEN/NOTIFY or Redis). */
async function revokedByCli(t: Test, transport: Record<string, string>) {
  const schema = await testSchema('cli')
  const kg = await keygateOnPostgres('cli', { KEYGATE_MAX_KEYS_PER_USER: '3', ...transport }, schema)
  t.teardown(async () => { await kg.close(); await schema.drop() })
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, ...transport }
  t.equal((await cli(['users', 'create', '--username', 'hank', '--email', 'hank@example.com'], env, 'hank password\n')).code, 0)
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'hank', password: 'hank password' } })).json.access_token
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'cli' } })).json
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'cached on the gateway')

  const listed = await cli(['keys', 'list', '--username', 'hank'], env)
  t.match(listed.stdout, new RegExp(`${key.id}  sk_live_\\w{4}…\\w{4}  active`))
  t.notOk(listed.stdout.includes(key.api_key), 'the listing holds no secret')
  const revoked = await cli(['keys', 'revoke', '--username', 'hank', '--id', key.id], env)
  t.equal(revoked.code, 0, revoked.stderr)
  const after = await call(kg.url, 'GET', '/api/v1/conversations', { token: key.api_key })
  t.equal(after.status, 401, 'the gateway refuses it on the next request')
  t.equal(after.json.code, 'KEY_REVOKED')

  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 200)
  t.equal((await cli(['users', 'deactivate', '--username', 'hank'], env)).code, 0)
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 401, 'the deactivated user\'s JWT is refused')
  t.equal((await cli(['users', 'activate', '--username', 'hank'], env)).code, 0)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'hank', password: 'hank password' } })).status, 200, 'reactivated, the user logs in again')
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })).status, 401, 'but the old session stays dead')
}

t.test('on PostgreSQL: a key revoked and a user deactivated by the CLI are refused by the running gateway at once', (t) => revokedByCli(t, {}))

t.test('with Redis: a key revoked and a user deactivated by the CLI are refused by the running gateway at once', async (t) => {
  const redis = await testRedisPrefix('cli')
  t.teardown(() => redis.drop())
  await revokedByCli(t, { REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix })
})

t.test('config check validates a route file without starting anything', async (t) => {
  const ok = await cli(['config', 'check', 'config/keygate.yaml'], {})
  t.equal(ok.code, 0)
  t.match(ok.stdout, /ok/)
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cfg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'upstreams:\n  a: { url: "ftp://x" }\nroutes:\n  - { name: r, prefix: /x, upstream: b, auth: sometimes }\n')
  const res = await cli(['config', 'check', bad], {})
  t.equal(res.code, 1)
  t.match(res.stderr, /upstreams\.a\.url/, 'names the bad upstream URL')
  t.match(res.stderr, /routes\[0\]\.auth|routes\.0\.auth|routes\[0\] auth/, 'names the bad auth mode')
})
