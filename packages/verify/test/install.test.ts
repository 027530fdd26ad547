import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { generateKey, identitySigner } from './signer.ts'

const run = promisify(execFile)
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Bytes of every file under `dir`. */
function sizeOf(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).reduce((sum, e) => (e.isFile() ? sum + statSync(join(e.parentPath, e.name)).size : sum), 0)
}

t.test('the packed package installs alone, with nothing beyond Node, and verifies from plain JavaScript', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-verify-install-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // `npm pack` builds first (prepack), so the tarball holds what the sources say now.
  const { stdout: packed } = await run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: packageDir })
  const tarball = join(dir, packed.trim().split('\n').pop()!)
  const app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-upstream', private: true, type: 'module' }))
  // --offline: an install that needed anything from a registry would fail here.
  const started = performance.now()
  await run('npm', ['install', '--omit=dev', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: app })
  const ms = performance.now() - started
  const installed = readdirSync(join(app, 'node_modules'), { withFileTypes: true }).filter((e) => !e.name.startsWith('.'))
  t.same(installed.map((e) => e.name), ['@keygate'], 'node_modules holds the package and nothing else')
  t.same(readdirSync(join(app, 'node_modules', '@keygate')), ['verify'])
  const bytes = sizeOf(join(app, 'node_modules'))
  t.ok(bytes < 200_000, `installed size ${bytes} bytes`)
  t.comment(`tarball ${statSync(tarball).size} bytes; installed ${bytes} bytes in ${Math.round(ms)} ms, 1 package`)

  const key = generateKey('EdDSA')
  const signer = identitySigner({ keys: [key], issuer: 'keygate', ttlSec: 60, clock: { now: Date.now } })
  const { value } = signer.sign({ aud: 'billing', sub: 'user-1', username: 'alice', auth: 'api_key', key_id: 'key-1', scopes: ['*'] })
  const script = `
    import { verifyIdentity } from '@keygate/verify'
    const options = { keys: JSON.parse(process.env.KEYS), audience: 'billing' }
    const good = await verifyIdentity(process.env.VALUE, options)
    const forged = await verifyIdentity(process.env.VALUE.slice(0, -4) + 'AAAA', options)
    console.log(JSON.stringify({ good: good.ok && good.identity.username, forged: forged.ok || forged.code }))`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env: { ...process.env, KEYS: JSON.stringify(signer.jwks().keys), VALUE: value } })
  t.same(JSON.parse(stdout), { good: 'alice', forged: 'IDENTITY_SIGNATURE_INVALID' })
})
