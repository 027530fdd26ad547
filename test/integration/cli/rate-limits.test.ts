import t from 'tap'
import { cli } from '../../helpers/cli.ts'
import { call, keygateOnPostgres } from '../../helpers/keygate.ts'
import { testSchema } from '../../helpers/postgres.ts'

t.test('keys create gives a key its own rate limit and quotas, which the gateway applies; bad values are refused', async (t) => {
  const schema = await testSchema('cli_rate_limits')
  const kg = await keygateOnPostgres('cli_rate_limits', { KEYGATE_MAX_KEYS_PER_USER: '5' }, schema)
  t.teardown(async () => { await kg.close(); await schema.drop() })
  const env = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema }
  t.equal((await cli(['users', 'create', '--username', 'ivy', '--email', 'ivy@example.com'], env, 'ivy password\n')).code, 0)

  const created = await cli(['keys', 'create', '--username', 'ivy', '--name', 'metered', '--rate-limit', '2/min', '--daily-quota', '100', '--monthly-quota', '1000'], env)
  t.equal(created.code, 0, created.stderr)
  const key = created.stdout.trim()
  const listed = (await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: key })).json as Array<{ rate_limit: unknown; quota: unknown }>
  t.match(listed[0], { rate_limit: { limit: 2, window_seconds: 60 }, quota: { daily: 100, monthly: 1000 } })
  const second = await fetch(`${kg.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } })
  t.equal(second.status, 200, 'the listing was the first request, this the second')
  const third = await fetch(`${kg.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } })
  t.equal(third.status, 429, 'the third in a minute is refused')
  t.match(await third.json(), { code: 'RATE_LIMITED' })

  for (const [args, message] of [
    [['--rate-limit', 'fast'], /--rate-limit expects LIMIT\/WINDOW such as 100\/min/],
    [['--daily-quota', '0'], /--daily-quota expects a whole number from 1 to 1000000000/],
    [['--monthly-quota', 'lots'], /--monthly-quota expects a whole number/],
  ] as const) {
    const refused = await cli(['keys', 'create', '--username', 'ivy', '--name', 'x', ...args], env)
    t.equal(refused.code, 2, `${args.join(' ')}: a usage error`)
    t.match(refused.stderr, message)
  }
})
