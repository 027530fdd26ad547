import { spawn } from 'node:child_process'
import { nodeArgs } from '../scripts/entry-points.ts'

/**
 * A proxy of the bench's own (bench/bare-proxy.ts, bench/stack-express.ts, bench/stack-fastify.ts) as a child
 * process: run from source through tsx on the Node binary `node` (the Node 24 section runs another one), ready once
 * it prints `listening <url>`.
 */
export interface ChildProxy {
  url: string
  pid: number
  /** Why the process ended, when it ended before `stop()`. */
  died(): string | undefined
  stop(): Promise<void>
}

/**
 * @param script the proxy's file, relative to the repository root
 * @param options.nodeArgs node's own arguments, such as `--cpu-prof` (BENCH_NODE_ARGS)
 * @param options.env added to this process's environment (settings, never on the command line when they hold a secret)
 */
export function startChildProxy(script: string, options: { node?: string; nodeArgs?: readonly string[]; args?: readonly string[]; env?: Record<string, string> } = {}): Promise<ChildProxy> {
  const child = spawn(options.node ?? process.execPath, [...(options.nodeArgs ?? []), ...nodeArgs(script, options.args ?? [], 'source')], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let exited: string | undefined
  let stopping = false
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      exited = `exit code ${code}, signal ${signal}`
      reject(new Error(`${script} exited (${exited}) before it listened`))
    })
    child.stdout.once('data', (d: Buffer) => {
      const m = /listening (\S+)/.exec(d.toString())
      if (!m) return reject(new Error(`${script} said ${d.toString()}`))
      resolve({
        url: m[1]!,
        pid: child.pid!,
        died: () => (stopping ? undefined : exited),
        stop: () => new Promise((r) => {
          stopping = true
          if (exited !== undefined) return r()
          child.once('exit', () => r())
          child.kill('SIGTERM')
        }),
      })
    })
  })
}
