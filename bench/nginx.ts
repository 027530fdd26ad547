import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nginxConf } from './nginx-conf.ts'
import { ensureBinary, freePort, waitFor } from './system.ts'

/**
 * nginx as the reference reverse proxy: its own master process (`daemon off`) on a generated configuration in
 * a temporary prefix, one worker (the same one core a single Keygate process gets), `proxy_pass` over HTTP/1.1
 * with upstream keep-alive, and an access log line per request as Keygate writes one.
 */
export interface RunningNginx { url: string; pid: number; version: string; stop(): Promise<void> }

export async function startNginx(dir: string, upstream: string, workers = 1): Promise<RunningNginx | { skipped: string }> {
  const bin = ensureBinary('nginx', 'nginx')
  if (!bin.path) return { skipped: bin.why! }
  const prefix = join(dir, 'nginx')
  mkdirSync(join(prefix, 'logs'), { recursive: true })
  // Workers of a master started as root run as nobody; they only need to reach their temp directories.
  chmodSync(dir, 0o755)
  chmodSync(prefix, 0o755)
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(conf, nginxConf(prefix, workers, `
upstream bench { server ${upstream.replace(/^http:\/\//, '')}; keepalive 64; }
server {
  listen 127.0.0.1:${port};
  location / {
    proxy_pass http://bench;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
  }
}
`))
  const child = spawn(bin.path, ['-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  let exited = false
  child.once('exit', () => { exited = true })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor('nginx answering', async () => (await fetch(`${url}/bench`)).ok, () => (exited ? 'exited' : undefined), 15_000)
  } catch (err) {
    child.kill('SIGKILL')
    return { skipped: `nginx did not start (${(err as Error).message}${stderr ? `: ${stderr.trim()}` : ''})` }
  }
  return {
    url,
    pid: child.pid!,
    version: /nginx\/(\S+)/.exec(spawnSync(bin.path, ['-v'], { encoding: 'utf8' }).stderr)?.[1] ?? '',
    // SIGQUIT is nginx's graceful shutdown.
    stop: () => new Promise((r) => { if (exited) return r(); child.once('exit', () => r()); child.kill('SIGQUIT') }),
  }
}
