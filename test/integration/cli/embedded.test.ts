import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { cli } from '../../helpers/cli.ts'
import { call, keygateOnPglite } from '../../helpers/keygate.ts'

// This file runs the CLI, each time its own process, and starts the gateway on PGlite: 25-45 s alone on two cores, up to two
// minutes while the suite's other files share them, so its own limit is longer than the suite's 120 s.
t.setTimeout(300_000)

t.test('on the embedded database: users are created from stdin, and the gateway sees them after start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { KEYGATE_DATA_DIR: dir }
  const refused = await cli(['users', 'create', '--username', 'erin', '--email', 'erin@example.com'], env, 'erin password\n')
  t.equal(refused.code, 1, 'a directory with no database in it is refused')
  t.match(refused.stderr, /no database in .*--init/)
  t.notOk(existsSync(join(dir, 'pgdata')), 'and nothing is created there')
  const created = await cli(['users', 'create', '--username', 'erin', '--email', 'erin@example.com', '--init'], env, 'erin password\n')
  t.equal(created.code, 0, created.stderr)
  t.match(created.stderr, `database: embedded PostgreSQL (PGlite) in ${dir} (created)`, 'it says which database it opened, and that it is new')
  t.match(created.stdout, /created user erin/)
  t.notMatch(created.stdout + created.stderr, /erin password/, 'the password is never echoed')
  const dup = await cli(['users', 'create', '--username', 'ERIN', '--email', 'other@example.com'], env, 'another password\n')
  t.equal(dup.code, 1)
  t.match(dup.stderr, `database: embedded PostgreSQL (PGlite) in ${dir}\n`, 'the second time it opens the same database, without --init')
  t.match(dup.stderr, /already exists/)
  const short = await cli(['users', 'create', '--username', 'frank', '--email', 'frank@example.com'], env, 'short\n')
  t.equal(short.code, 1, 'a password under 8 characters is refused')
  t.match(short.stderr, /password/)
  const usage = await cli(['users', 'create', '--username', 'gina', '--email', 'gina@example.com', '--password', 'on-argv'], env)
  t.equal(usage.code, 2, 'a password on argv is not an option')
  t.notMatch(usage.stderr, /on-argv/)

  const kg = await keygateOnPglite({ KEYGATE_BOOTSTRAP_USERNAME: '', KEYGATE_BOOTSTRAP_EMAIL: '', KEYGATE_BOOTSTRAP_PASSWORD: '' }, dir)
  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'erin password' } })
  t.equal(login.status, 200, 'the user logs in through the gateway')
  const locked = await cli(['users', 'list'], env)
  t.equal(locked.code, 1, 'the CLI refuses a data directory the gateway holds')
  t.match(locked.stderr, /in use by process/)
  await kg.close()
  const listed = await cli(['users', 'list'], env)
  t.match(listed.stdout, /erin/)
})
