import { readFileSync } from 'node:fs'
import t from 'tap'
import { cli } from '../../helpers/cli.ts'

/** The process around the CLI: streams and exit statuses (the commands' rules: test/unit/cli/run.test.ts). */
t.test('help and version go to stdout with status 0; a command-line mistake to stderr with status 2', async (t) => {
  const help = await cli(['--help'], {})
  t.equal(help.code, 0)
  t.match(help.stdout, /npm run keygate -- keys create/)
  t.equal(help.stderr, '')
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  const v = await cli(['--version'], {})
  t.same(v, { code: 0, stdout: `keygate ${version}\n`, stderr: '' })
  const wrong = await cli(['users', 'create', '--username', 'gina', '--email', 'gina@example.com', '--password', 'on-argv'], {}, 'a password\n')
  t.equal(wrong.code, 2, 'a password on argv is not an option')
  t.match(wrong.stderr, /users create: unknown option --password/)
  t.notMatch(wrong.stderr, /on-argv/)
  t.equal(wrong.stdout, '')
})
