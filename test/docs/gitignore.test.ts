import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/** The data directories the README tells people to create stay out of `git status`. */
const root = fileURLToPath(new URL('../../', import.meta.url))
const readme = readFileSync(`${root}README.md`, 'utf8')

/** Exit 0: git ignores the path; 1: it does not. */
const ignored = (path: string) => {
  try {
    execFileSync('git', ['check-ignore', '--quiet', '--no-index', path], { cwd: root, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

t.test('every data directory the README names is ignored by git, with the files Keygate writes there', async (t) => {
  const dirs = new Set(['./data', ...[...readme.matchAll(/KEYGATE_DATA_DIR=(\.\/[\w.-]+)/g)].map((m) => m[1]!)])
  t.ok(dirs.has('./data2'), 'the README\'s second-instance example is among them')
  for (const dir of dirs) {
    for (const file of ['keygate.lock', 'pgdata/PG_VERSION']) t.ok(ignored(`${dir}/${file}`), `${dir}/${file} is ignored`)
  }
})

t.test('the data directory patterns do not hide source files', async (t) => {
  for (const path of ['core/open-database.ts', 'test/integration/database-down.test.ts', 'docs/openapi.json', 'deploy/nginx.conf']) t.notOk(ignored(path), `${path} is not ignored`)
})
