import { spawn, type ChildProcess } from 'node:child_process'
import { ROOT } from '../../scripts/entry-points.ts'
import { compiledArgs } from './compiled.ts'
import { testEnv } from './keygate.ts'

export interface KeygateProcess {
  readonly url: string
  readonly pid: number
  readonly output: string[]
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts the gateway's entry point (scripts/entry-points.ts, compiled: test/helpers/compiled.ts) as its own OS process and waits until it listens (its info log says where). */
export function spawnKeygate(env: Record<string, string>, timeoutMs = 30_000): Promise<KeygateProcess> {
  const child: ChildProcess = spawn(process.execPath, compiledArgs('gateway'), {
    cwd: ROOT,
    env: { ...process.env, ...testEnv({ ...env, LOG_LEVEL: 'info' }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`keygate did not start:\n${output.join('')}`)) }, timeoutMs)
    const onData = (d: Buffer) => {
      const text = d.toString()
      output.push(text)
      const m = /"msg":"keygate listening".*?"url":"http:\/\/[^:]+:(\d+)"/.exec(text)
      if (m) {
        clearTimeout(timer)
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          pid: child.pid!,
          output,
          stop: (signal = 'SIGTERM') => { child.kill(signal); return exited },
        })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (d: Buffer) => output.push(d.toString()))
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`keygate exited with ${code}:\n${output.join('')}`)) })
  })
}
