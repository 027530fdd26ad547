import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runCli } from '../../../cli/run.ts'

const COMMANDS = ['users create', 'users list', 'users set-password', 'users deactivate', 'users activate', 'keys list', 'keys create', 'keys revoke', 'signing-keys list', 'signing-keys rotate', 'config check']
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version

/** Runs the CLI in this process; stdin holds `stdin`, and reading it is recorded. */
async function run(args: string[], env: Record<string, string> = {}, stdin = 'a password\n') {
  const out: string[] = []
  const err: string[] = []
  let read = false
  const code = await runCli(args, {
    out: (s) => void out.push(s),
    err: (s) => void err.push(s),
    say: (l) => void err.push(`keygate: ${l}\n`),
    readSecret: async () => { read = true; return stdin.split('\n')[0]! },
  }, { PATH: process.env.PATH, ...env })
  return { code, stdout: out.join(''), stderr: err.join(''), read }
}

/** A data directory with nothing in it; the test checks nothing was created there. */
function emptyDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cli-run-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('--help, -h and help print every command on stdout and exit 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await run(args)
    t.equal(r.code, 0, args.join(' '))
    t.equal(r.stderr, '')
    for (const name of COMMANDS) t.match(r.stdout, `npm run keygate -- ${name}`, `${args.join(' ')} lists ${name}`)
  }
  const one = await run(['keys', 'create', '--help'])
  t.equal(one.code, 0)
  t.match(one.stdout, /keys create --username NAME --name KEY_NAME/)
  t.notMatch(one.stdout, /keys revoke/, 'COMMAND --help shows that command')
  const group = await run(['help', 'users'])
  t.equal(group.code, 0)
  t.match(group.stdout, /users set-password/)
  t.notMatch(group.stdout, /signing-keys/)
  t.equal((await run(['help', 'nothing'])).code, 2)
})

t.test('--version prints the version of package.json', async (t) => {
  const r = await run(['--version'])
  t.same(r, { code: 0, stdout: `keygate ${VERSION}\n`, stderr: '', read: false })
})

t.test('an unknown option is refused by every command, before anything is read or opened', async (t) => {
  const dir = emptyDir(t)
  for (const name of COMMANDS) {
    const r = await run([...name.split(' '), '--bogus', ...(name === 'config check' ? ['config/keygate.yaml'] : [])], { KEYGATE_DATA_DIR: dir })
    t.equal(r.code, 2, `${name} --bogus`)
    t.match(r.stderr, `keygate: ${name}: unknown option --bogus`)
    t.match(r.stderr, `usage:\n  npm run keygate -- ${name}`, 'with the usage of that command')
    t.equal(r.stdout, '')
    t.notOk(r.read, 'no password was read')
  }
  t.same(readdirSync(dir), [], 'nothing was created')
  const top = await run(['--bogus', 'users', 'list'])
  t.equal(top.code, 2, 'an option before the command')
  t.match(top.stderr, /unknown option --bogus/)
  const command = await run(['users', 'remove', '--username', 'x'])
  t.equal(command.code, 2, 'an unknown command')
  t.match(command.stderr, /unknown command "users remove"/)
  t.equal((await run([])).code, 2, 'no command')
  t.match((await run(['keys'])).stderr, /keys needs a subcommand/)
  t.match((await run(['users', 'list', 'extra'])).stderr, /unexpected argument "extra"/)
  t.match((await run(['keys', 'list', '--username', 'a', '--username', 'b'])).stderr, /--username is given twice/)
  const missing = await run(['keys', 'revoke', '--username', 'a'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /keys revoke needs --id/)
  t.match((await run(['config', 'check'])).stderr, /config check needs a FILE/)
})

t.test('a malformed id or number is refused with a clear error that does not repeat the value', async (t) => {
  const pasted = 'sk_live_4QzXbJ0rWq1c5Yk2Vn8Hs3Lm6Tp9Ad7Fg0Ee1Rr2Tt3Yy'
  const r = await run(['keys', 'revoke', '--username', 'alice', '--id', pasted])
  t.equal(r.code, 2)
  t.match(r.stderr, /keys revoke: --id is not an id: expected a UUID/)
  t.notMatch(r.stderr, pasted, 'a key pasted in place of its id is not echoed')
  const days = await run(['keys', 'create', '--username', 'alice', '--name', 'ci', '--expires-in-days', 'soon'])
  t.equal(days.code, 2)
  t.match(days.stderr, /--expires-in-days expects a whole number from 1 to 3650/)
})

t.test('the CLI reads its settings through the gateway\'s loader, with the same checks', async (t) => {
  const dir = emptyDir(t)
  const workers = await run(['users', 'list'], { KEYGATE_DATA_DIR: dir, KEYGATE_WORKERS: '2' })
  t.equal(workers.code, 1)
  t.match(workers.stderr, /KEYGATE_WORKERS above 1 needs DATABASE_URL/, 'a check across settings that only the loader makes')
  const bad = await run(['users', 'list'], { KEYGATE_DATA_DIR: dir, KEYGATE_CACHE_MAX: 'lots' })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /environment KEYGATE_CACHE_MAX/)
  const empty = await run(['users', 'list'], { KEYGATE_DATA_DIR: dir, KEYGATE_CACHE_MAX: '' })
  t.match(empty.stderr, /no database in/, 'a setting set to the empty string counts as unset, as for the gateway')
})

t.test('a data directory with no database is refused unless --init, and nothing is created', async (t) => {
  const dir = emptyDir(t)
  const r = await run(['users', 'list'], { KEYGATE_DATA_DIR: join(dir, 'typo') })
  t.equal(r.code, 1)
  t.match(r.stderr, `keygate: no database in ${join(dir, 'typo')}`)
  t.match(r.stderr, /--init/)
  t.same(readdirSync(dir), [], 'the directory was not created')
})
