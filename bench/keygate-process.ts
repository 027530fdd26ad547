import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gatewayArgs } from './spawn.ts'
import { freePort, waitFor } from './system.ts'

/**
 * A Keygate started as its own process for `npm run bench`, as an operator runs it: compiled, `LOG_LEVEL=info`, so every
 * request writes its access log line (to a file here, as stdout would go to a collector). Ready once every
 * worker logged that it listens and `/healthz` answers.
 */
export interface BenchKeygate {
  name: string
  url: string
  pid: number
  /** Why the process ended, when it ended before `stop()`. */
  died(): string | undefined
  stop(): Promise<void>
}

/**
 * @param env settings on top of the bench defaults (PORT is chosen here)
 * @param nodeArgs extra arguments for node, such as `--cpu-prof` (BENCH_NODE_ARGS)
 * @param cwd the checkout to run (BENCH_COMPARE_DIR runs another one beside this one)
 * @param node the Node binary (the Node 24 section runs another one; bench/instructions.ts, node under valgrind)
 * @param startMs how long it may take to listen
 */
export async function startBenchKeygate(name: string, dir: string, env: Record<string, string>, nodeArgs: readonly string[] = [], cwd = process.cwd(), node = process.execPath, startMs = 60_000): Promise<BenchKeygate> {
  const port = await freePort()
  const log = join(dir, `${name}.log`)
  const out = openSync(log, 'w')
  const err = openSync(join(dir, `${name}.err`), 'w')
  // Below info the listening line is not written: /healthz alone then says it is up.
  const workers = ['info', 'debug', undefined].includes(env.LOG_LEVEL) ? Number(env.KEYGATE_WORKERS ?? 1) : 0
  const child = spawn(node, [...nodeArgs, ...gatewayArgs('compiled', cwd)], {
    env: { ...process.env, LOG_LEVEL: 'info', HOST: '127.0.0.1', METRICS_PORT: '0', KEYGATE_DEMOS: 'false', KEYGATE_CONFIG_WATCH: 'false', ...env, PORT: String(port) },
    stdio: ['ignore', out, err],
    cwd,
  })
  closeSync(out)
  closeSync(err)
  let exited: string | undefined
  let stopping = false
  child.once('exit', (code, signal) => { exited = `exit code ${code}, signal ${signal}` })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor(`keygate "${name}" listening`, async () => {
      const listening = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"msg":"keygate listening"')).length
      return listening >= workers && (await fetch(`${url}/healthz`)).ok
    }, () => exited, startMs)
  } catch (e) {
    child.kill('SIGKILL')
    throw new Error(`keygate "${name}" did not start: ${(e as Error).message}\n${readFileSync(join(dir, `${name}.err`), 'utf8')}`)
  }
  return {
    name,
    url,
    pid: child.pid!,
    died: () => (stopping || exited === undefined ? undefined : `${exited}; ${readFileSync(join(dir, `${name}.err`), 'utf8').slice(-2000)}`),
    stop: () => new Promise((r) => {
      stopping = true
      if (exited !== undefined) return r()
      child.once('exit', () => r())
      child.kill('SIGTERM')
    }),
  }
}
