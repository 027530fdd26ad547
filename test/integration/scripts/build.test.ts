import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { DIST, ENTRY_POINTS, entryCommand, ROOT, runnableFile, type EntryName } from '../../../scripts/entry-points.ts'
import { testEnv } from '../../helpers/keygate.ts'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string }; dependencies: Record<string, string> }

/** A copy of the checkout as a fresh clone has it (the files git knows or would add, no dist/), sharing node_modules. */
function cleanCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-clone-'))
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)
  for (const f of files) {
    if (!existsSync(join(ROOT, f))) continue
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    cpSync(join(ROOT, f), join(dir, f))
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return dir
}

/** Every process below `pid`, with its command line. */
function descendants(pid: number): Array<{ pid: number; args: string }> {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).split('\n').filter(Boolean).map((line) => {
    const [, p, pp, args] = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line)!
    return { pid: Number(p), ppid: Number(pp), args: args! }
  })
  const found: Array<{ pid: number; args: string }> = []
  const walk = (parent: number) => {
    for (const row of table.filter((r) => r.ppid === parent)) {
      found.push({ pid: row.pid, args: row.args })
      walk(row.pid)
    }
  }
  walk(pid)
  return found
}

t.test('every entry point\'s npm script runs its compiled file, built first when stale; npm run dev runs the sources', async (t) => {
  for (const name of Object.keys(ENTRY_POINTS) as EntryName[]) {
    const { script } = ENTRY_POINTS[name]
    t.equal(pkg.scripts[script], entryCommand(name, 'compiled').join(' '), `npm run ${script}`)
    t.equal(pkg.scripts[`pre${script}`], 'node scripts/build.mjs --if-stale', `npm run ${script} builds first when dist/ is missing or stale`)
  }
  t.equal(pkg.scripts.dev, entryCommand('gateway', 'source').join(' '), 'npm run dev: the gateway from its sources')
  t.equal(pkg.scripts.build, 'node scripts/build.mjs', 'npm run build')
  t.notOk(pkg.dependencies.tsx, 'tsx is a dev dependency only')
  t.equal(pkg.engines.node, '^20.18.1 || ^24', 'engines: the two runtimes the suite runs on (.ci/run)')
})

t.test('npm start on a fresh clone builds dist/ (migrations included) and runs compiled code: no tsx in its process tree, its pid in the listening line', async (t) => {
  const dir = cleanCopy()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.notOk(existsSync(join(dir, DIST, 'gateway')), 'the copy has no build')

  const npm = spawn('npm', ['start'], {
    cwd: dir,
    env: { ...process.env, ...testEnv({ LOG_LEVEL: 'info', KEYGATE_DATA_DIR: join(dir, 'data') }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  const stdout: string[] = []
  npm.stdout.on('data', (d: Buffer) => { output.push(d.toString()); stdout.push(d.toString()) })
  npm.stderr.on('data', (d: Buffer) => output.push(d.toString()))
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (npm.exitCode === null) for (const p of descendants(npm.pid!)) process.kill(p.pid, 'SIGKILL') })

  const line = await new Promise<{ pid: number; url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not listen:\n${output.join('')}`)), 100_000)
    const check = () => {
      const found = stdout.join('').split('\n').find((l) => l.includes('"msg":"keygate listening"'))
      if (!found) return
      clearTimeout(timer)
      resolve(JSON.parse(found) as { pid: number; url: string })
    }
    npm.stdout.on('data', check)
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`npm start exited with ${code}:\n${output.join('')}`)) })
  })
  t.match(output.join(''), /building dist\/ \(dist\/ has not been built\)/, 'prestart built the missing dist/')

  const tree = descendants(npm.pid!)
  t.same(tree.filter((p) => /\btsx\b/.test(p.args)), [], 'no process below npm start runs tsx')
  const gateway = tree.filter((p) => p.args === entryCommand('gateway', 'compiled').join(' '))
  t.equal(gateway.length, 1, `one process runs ${runnableFile(ENTRY_POINTS.gateway.file, 'compiled')}`)
  t.equal(line.pid, gateway[0]?.pid, 'the listening line names that process')
  t.equal((await fetch(`${line.url.replace('0.0.0.0', '127.0.0.1')}/readyz`)).status, 200, 'migrated and ready')

  const sql = (d: string) => readdirSync(d).filter((f) => f.endsWith('.sql')).sort()
  t.same(sql(join(dir, DIST, 'core/migrations')), sql(join(ROOT, 'core/migrations')), 'the build copied every migration beside the compiled code')

  process.kill(line.pid, 'SIGTERM')
  t.equal(await exited, 0, 'SIGTERM to that pid stops it cleanly')

  const stamp = join(dir, DIST, '.build-stamp')
  const built = statSync(stamp).mtimeMs
  const ifStale = () => execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  ifStale()
  t.equal(statSync(stamp).mtimeMs, built, 'an up-to-date build is not redone')
  // What --if-stale would decide, without paying for a second build.
  const staleness = () => execFileSync(process.execPath, ['--input-type=module', '-e', 'const { staleness } = await import("./scripts/build.mjs"); process.stdout.write(staleness() ?? "up to date")'], { cwd: dir, encoding: 'utf8' })
  t.equal(staleness(), 'up to date')
  const later = new Date(built + 5_000)
  utimesSync(join(dir, 'core/migrations/001_init.sql'), later, later)
  t.equal(staleness(), 'core/migrations/001_init.sql changed since the last build', 'a source changed after the build: --if-stale builds again')

  // What a source that is gone left in dist/ (a renamed module, a deleted migration) goes at the next build;
  // everything with a source stays, the committed console bundle among it.
  const orphans = ['gateway/stage-gone.js', 'gateway/stage-gone.d.ts', 'core/migrations/999_gone.sql']
  for (const f of orphans) writeFileSync(join(dir, DIST, f), '// left behind\n')
  execFileSync(process.execPath, ['--input-type=module', '-e', 'const { removeOrphans } = await import("./scripts/build.mjs"); removeOrphans()'], { cwd: dir })
  t.same(orphans.filter((f) => existsSync(join(dir, DIST, f))), [], 'files without a source are removed')
  for (const kept of ['gateway/main.js', 'core/migrations/001_init.sql', 'admin-api/console/console.js']) t.ok(existsSync(join(dir, DIST, kept)), `${kept} is kept`)
})
