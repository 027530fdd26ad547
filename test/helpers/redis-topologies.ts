import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.ts'

const run = promisify(execFile)

/** Redis servers of a test's own (Sentinel, Cluster), started from the `redis-server` on PATH and stopped by `stop()`. */
export interface RedisTopology { url: string; stop(): Promise<void> }

function start(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  child.once('error', () => {})
  return child
}

async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await ok().catch(() => false)) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout

function stopAll(children: ChildProcess[], dir: string) {
  return async () => {
    await Promise.all(children.map((c) => new Promise<void>((r) => { if (c.exitCode !== null || c.signalCode !== null) return r(); c.once('exit', () => r()); c.kill('SIGKILL') })))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One Sentinel watching the Redis at `master` under the name `mymaster`. */
export async function redisSentinel(master: { host: string; port: number }): Promise<RedisTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-sentinel-'))
  const port = await freePort()
  const conf = join(dir, 'sentinel.conf')
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster ${master.host} ${master.port} 1\n`)
  const child = start([conf, '--sentinel'])
  const stop = stopAll([child], dir)
  try {
    await until('the sentinel to know its master', async () => (await cli(port, 'SENTINEL', 'get-master-addr-by-name', 'mymaster')).includes(String(master.port)))
  } catch (err) {
    await stop()
    throw err
  }
  return { url: `redis-sentinel://127.0.0.1:${port}/mymaster`, stop }
}

/** A three-master Redis Cluster on loopback. */
export async function redisCluster(): Promise<RedisTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cluster-'))
  const ports = [await freePort(), await freePort(), await freePort()]
  const children = ports.map((port) => start(['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir, '--save', '', '--appendonly', 'no']))
  const stop = stopAll(children, dir)
  try {
    for (const port of ports) await until(`redis on ${port}`, async () => (await cli(port, 'PING')).includes('PONG'))
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
    for (const port of ports) await until('the cluster to be ok', async () => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'))
  } catch (err) {
    await stop()
    throw err
  }
  return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop }
}
