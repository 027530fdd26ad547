import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { entryArgs, ROOT, type Runtime } from '../scripts/entry-points.ts'

/**
 * node's arguments that start the gateway of the checkout at `cwd` (scripts/entry-points.ts). `compiled`, as
 * production runs it, builds dist/ first when it is missing or stale; `source` runs the TypeScript through tsx
 * (the tests). A checkout from before the compiled build (BENCH_COMPARE_DIR) can only run its sources.
 */
export function gatewayArgs(runtime: Runtime = 'compiled', cwd = ROOT): string[] {
  if (runtime === 'source' || !existsSync(join(cwd, 'scripts/build.mjs'))) return entryArgs('gateway', 'source')
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd, stdio: ['ignore', 'inherit', 'inherit'] })
  return entryArgs('gateway', 'compiled')
}

/** A Keygate started as its own process for a benchmark (compiled unless `runtime` says otherwise); resolves once it listens. */
export function startKeygateProcess(env: Record<string, string>, runtime: Runtime = 'compiled'): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, gatewayArgs(runtime), { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('keygate did not start')) }, 60_000)
    child.stdout.on('data', (d: Buffer) => {
      const m = /"msg":"keygate listening".*?"url":"http:\/\/[^:]+:(\d+)"/.exec(d.toString())
      if (!m) return
      clearTimeout(timer)
      resolve({
        url: `http://127.0.0.1:${m[1]}`,
        pid: child.pid!,
        stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM') }),
      })
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`keygate exited with ${code}`)) })
  })
}
