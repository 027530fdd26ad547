import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../../scripts/entry-points.ts'
import { compiledArgs } from '../helpers/compiled.ts'
import { testEnv } from '../helpers/keygate.ts'

/** Runs the gateway's entry point to its exit; its code and what it wrote. */
function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, compiledArgs('gateway'), { cwd: ROOT, env: { ...process.env, ...testEnv({ LOG_LEVEL: 'info', ...env }) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) => child.once('close', (code) => { clearTimeout(killer); resolve({ code, stdout, stderr }) }))
}

t.test('an invalid configuration is one JSON line on stderr listing every problem, and exit code 1', async (t) => {
  const r = await run({ KEYGATE_CONFIG: '/nonexistent/keygate.yaml', KEYGATE_TLS_CERT_FILE: '/etc/hostname', KEYGATE_BOOTSTRAP_PASSWORD: 'not a secret anyone should see' })
  t.equal(r.code, 1)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  const line = JSON.parse(lines[0]!)
  t.match(line, { level: 'fatal', msg: 'invalid configuration', service: 'keygate', time: /^\d{4}-/ })
  t.match(line.problems, [/KEYGATE_TLS_CERT_FILE and KEYGATE_TLS_KEY_FILE go together/, /cannot read the configuration file \(ENOENT\)/])
  t.notMatch(r.stderr, /not a secret anyone should see/, 'no setting\'s value is written')
})

t.test('a start-up that fails later (the port is taken) is one JSON line with the error\'s code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-fatal-'))
  const taken = createServer()
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => { taken.close(); rmSync(dir, { recursive: true, force: true }) })
  const r = await run({ KEYGATE_DATA_DIR: dir, PORT: String((taken.address() as AddressInfo).port) })
  t.equal(r.code, 1)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(JSON.parse(lines[0]!), { level: 'fatal', msg: 'keygate failed to start', code: 'EADDRINUSE', error: /EADDRINUSE/ })
})
