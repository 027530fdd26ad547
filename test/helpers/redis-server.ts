import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.ts'

const run = promisify(execFile)

/**
 * A redis-server of a test's own on a free loopback port (never the shared one at 6379), without persistence,
 * so a test can kill it and start it again on the same port. `stop()` kills it and removes its directory.
 */
export interface PrivateRedis {
  readonly port: number
  readonly url: string
  /** The pid of the server running now (it changes on `restart()`). */
  readonly pid: number
  /** SIGKILL: no shutdown, connections reset; resolves once the process has exited. */
  kill(): Promise<void>
  /** Starts a new server on the same port and resolves when it answers PING. */
  restart(): Promise<void>
  stop(): Promise<void>
}

async function answersPing(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    const out = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING']).then((r) => r.stdout, () => '')
    if (out.includes('PONG')) return
    if (Date.now() > end) throw new Error(`redis-server on ${port} did not answer PING within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function privateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
    c.once('error', () => {})
    child = c
    await answersPing(port)
  }
  const kill = async () => {
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL') })
  }
  try {
    await start()
  } catch (err) {
    await kill()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() { return child!.pid! },
    kill,
    restart: start,
    async stop() {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
