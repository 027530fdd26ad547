import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closeAll, type Cleanups } from '../../../core/cleanups.ts'
import { jsonLogger } from '../../../core/logger.ts'
import { readServerCertificate, watchServerCertificate } from '../../../gateway/tls-certificate.ts'
import { testPki } from '../../helpers/certificates.ts'

/**
 * The listener's certificate on real files, mounted the way the kubelet mounts a Secret (the same AtomicWriter
 * as a ConfigMap): `tls.crt` and `tls.key` links through `..data`, swapped to a new directory on each update.
 */
function secretVolume(dir: string, files: Record<string, string>) {
  let version = 0
  const write = (content: Record<string, string>) => {
    const ts = `..2026_12_05_13_00_0${version}.${String(++version).padStart(9, '0')}`
    mkdirSync(join(dir, ts))
    for (const [name, text] of Object.entries(content)) writeFileSync(join(dir, ts, name), text, { mode: 0o600 })
    return ts
  }
  symlinkSync(write(files), join(dir, '..data'))
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name))
  return {
    update(content: Record<string, string>) {
      const old = readlinkSync(join(dir, '..data'))
      symlinkSync(write(content), join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
      rmSync(join(dir, old), { recursive: true })
    },
  }
}

const pki = testPki('listener')
t.teardown(() => pki.remove())

t.test('a Secret update (the ..data link swapped) puts the renewed pair in force; a mismatched pair is refused', async (t) => {
  const first = pki.issue('localhost')
  const renewed = pki.issue('localhost')
  const dir = join(pki.dir, 'secret')
  mkdirSync(dir)
  const volume = secretVolume(dir, { 'tls.crt': first.cert, 'tls.key': first.key })
  const certFile = join(dir, 'tls.crt')
  const keyFile = join(dir, 'tls.key')
  const initial = readServerCertificate(certFile, keyFile).certificate!
  t.ok(initial, 'the mounted pair loads')
  const contexts: Array<{ cert?: unknown; key?: unknown }> = []
  const logs: Array<Record<string, unknown>> = []
  const expiries: string[] = []
  const cleanups: Cleanups = []
  t.teardown(() => closeAll(cleanups))
  watchServerCertificate({
    certFile, keyFile, initial, cleanups, watch: true,
    server: { setSecureContext: (ctx) => void contexts.push(ctx as { cert?: unknown; key?: unknown }) },
    logger: jsonLogger({ level: 'info', write: (l) => void logs.push(JSON.parse(l)) }),
    onLoaded: (c) => void expiries.push(c.notAfter),
  })
  const until = async (what: string, check: () => boolean) => {
    const end = Date.now() + 5000
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  volume.update({ 'tls.crt': renewed.cert, 'tls.key': renewed.key })
  await until('the renewed pair', () => contexts.length === 1)
  t.same(contexts[0], { cert: renewed.cert, key: renewed.key }, 'the renewed pair is in force')
  t.equal(expiries.length, 2, 'the expiry is told at start and after the reload')
  t.match(logs.find((l) => l.msg === 'TLS certificate reloaded'), { trigger: 'file change', subject: 'CN=localhost', fingerprint: /^[0-9A-F:]+$/ })

  volume.update({ 'tls.crt': first.cert, 'tls.key': renewed.key })
  await until('the refusal', () => logs.some((l) => l.msg === 'TLS certificate reload failed; the previous certificate keeps serving'))
  t.equal(contexts.length, 1, 'a key that does not match its certificate is not put in force')
  t.match(JSON.stringify(logs.at(-1)), /KEYGATE_TLS_KEY_FILE .* not the private key of/)
  t.notMatch(JSON.stringify(logs), /PRIVATE KEY/, 'the key never appears in a line')
})

t.test('the pair is checked at start: unreadable files, a non-certificate, a key of another certificate', async (t) => {
  const one = pki.issue('localhost')
  const two = pki.issue('localhost')
  t.match(readServerCertificate('/nonexistent/tls.crt', one.keyFile).problems, [/KEYGATE_TLS_CERT_FILE \/nonexistent\/tls\.crt: cannot read \(ENOENT\)/])
  t.match(readServerCertificate(one.keyFile, one.keyFile).problems, [/KEYGATE_TLS_CERT_FILE .*: not a PEM certificate/])
  t.match(readServerCertificate(one.certFile, two.keyFile).problems, [/KEYGATE_TLS_KEY_FILE .*: not the private key of/])
  t.match(readServerCertificate(one.certFile, one.keyFile).certificate, { subject: 'CN=localhost', notAfter: /^\d{4}-/ })
})
