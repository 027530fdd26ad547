import { spawn } from 'node:child_process'

/** A Keygate started as its own process for a benchmark; resolves once it listens. */
export function startKeygateProcess(env: Record<string, string>): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
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
