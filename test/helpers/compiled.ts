import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { processAlive } from '../../core/process-alive.ts'
import { entryArgs, ROOT, type EntryName } from '../../scripts/entry-points.ts'

/**
 * The tests start Keygate's processes (gateway, CLI, fleet) as production does, from dist/: a compiled process
 * starts in about half the CPU time of the same sources through tsx, and the suite starts dozens. dist/
 * is built first when it is missing or older than a source (`node scripts/build.mjs --if-stale`, as `npm start`
 * does), so a test always runs what the sources say, whether `npm test` built it already or one file runs alone.
 * `npm run dev` and test/integration/scripts/build.test.ts still hold the source runtime and the build itself.
 */

/** Held while one test process checks (and, when stale, builds) dist/, so that files running in parallel build it once. */
const LOCK = join(tmpdir(), `keygate-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 16)}.lock`)
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Runs `fn` holding LOCK; a lock left by a process that is gone is taken over. */
function locked(fn: () => void): void {
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let holder = 0
    let age = 0
    try {
      holder = Number(readFileSync(LOCK, 'utf8'))
      age = Date.now() - statSync(LOCK).mtimeMs
    } catch {
      continue
    }
    // An empty file is a lock being written (its holder is alive), unless it has been empty for seconds.
    if (holder > 0 ? !processAlive(holder) : age > 10_000) rmSync(LOCK, { force: true })
    else pause(100)
  }
  try {
    fn()
  } finally {
    rmSync(LOCK, { force: true })
  }
}

let fresh = false

/** Builds dist/ when it is missing or stale (once per test process, one process at a time). */
export function ensureBuilt(): void {
  if (fresh) return
  locked(() => {
    try {
      execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string }
      throw new Error(`node scripts/build.mjs --if-stale failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
    }
  })
  fresh = true
}

/** node's arguments that start the compiled entry point `name` (spawn them with `process.execPath`, `cwd: ROOT`); builds dist/ first when stale. */
export function compiledArgs(name: EntryName): string[] {
  ensureBuilt()
  return entryArgs(name, 'compiled')
}
