import { spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../scripts/entry-points.ts'
import { nginxConf } from './nginx-conf.ts'
import { ensureBinary, freePort, waitFor } from './system.ts'

/**
 * Decision mode for `npm run bench`: nginx from the shipped `deploy/nginx-forward-auth.conf` (only the addresses
 * and the cache directory put in) in front of the bench upstream, asking a Keygate about every request, with the
 * decision cache as shipped (`cached`) or turned off. One worker and 64 idle upstream connections kept (the shipped
 * file's `keepalive 64`), as the nginx row; the access log on, as every row writes one line per request. The
 * cache lives on a tmpfs, as the shipped file asks (/dev/shm here: on this kind of machine /run and the temporary
 * directory may be on disk).
 */
export interface RunningForwardAuth { url: string; pid: number; stop(): Promise<void> }

export async function startNginxForwardAuth(dir: string, keygate: string, upstream: string, cached: boolean): Promise<RunningForwardAuth | { skipped: string }> {
  const bin = ensureBinary('nginx', 'nginx')
  if (!bin.path) return { skipped: bin.why! }
  const prefix = join(dir, `nginx-decide-${cached ? 'cached' : 'uncached'}`)
  mkdirSync(join(prefix, 'logs'), { recursive: true })
  const decisions = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/keygate-bench-decisions-') : join(prefix, 'decisions')
  mkdirSync(decisions, { recursive: true })
  // Workers of a master started as root run as nobody: they write the decision cache.
  chmodSync(dir, 0o755)
  chmodSync(prefix, 0o755)
  if (process.getuid?.() === 0) chownSync(decisions, 65534, 65534)
  const removeDecisions = () => rmSync(decisions, { recursive: true, force: true })
  const port = await freePort()
  const put = (text: string, from: string, to: string) => {
    if (!text.includes(from)) throw new Error(`deploy/nginx-forward-auth.conf no longer contains "${from}"`)
    return text.replaceAll(from, to)
  }
  let conf = readFileSync(join(ROOT, 'deploy/nginx-forward-auth.conf'), 'utf8')
  conf = put(conf, 'server keygate:8000;', `server ${keygate.replace(/^http:\/\//, '')};`)
  conf = put(conf, 'server app:8080;', `server ${upstream.replace(/^http:\/\//, '')};`)
  conf = put(conf, 'listen 80;', `listen 127.0.0.1:${port};`)
  conf = put(conf, '/run/nginx-keygate-decisions', decisions)
  if (!cached) conf = put(conf, 'proxy_cache keygate_decisions;', 'proxy_cache off;')
  writeFileSync(join(prefix, 'forward-auth.conf'), conf)
  writeFileSync(join(prefix, 'nginx.conf'), nginxConf(prefix, 1, `include ${prefix}/forward-auth.conf;`))
  const child = spawn(bin.path, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs', 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  let exited = false
  child.once('exit', () => { exited = true })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor('nginx (forward auth) answering', async () => (await fetch(`${url}/bench`)).status > 0, () => (exited ? 'exited' : undefined), 15_000)
  } catch (err) {
    child.kill('SIGKILL')
    removeDecisions()
    return { skipped: `nginx did not start (${(err as Error).message}${stderr ? `: ${stderr.trim()}` : ''})` }
  }
  return {
    url,
    pid: child.pid!,
    stop: () => new Promise<void>((r) => { if (exited) return r(); child.once('exit', () => r()); child.kill('SIGQUIT') }).then(removeDecisions),
  }
}
