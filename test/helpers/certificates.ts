import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Certificates made for a test with Debian's `openssl` (apt-get install openssl): a private CA, and server
 * and client certificates it signs, as PEM files in a temporary directory the test removes.
 */
export interface TestPki {
  readonly dir: string
  /** The CA's certificate file. */
  readonly caFile: string
  /** Issues a certificate for `name` (a server: `localhost` and 127.0.0.1 as alternative names; or a client), signed by this CA or self-signed. */
  issue(name: string, options?: { client?: boolean; selfSigned?: boolean; days?: number }): { certFile: string; keyFile: string; cert: string; key: string }
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer }
    if (e.code === 'ENOENT') throw new Error('openssl is not installed: apt-get install -y --no-install-recommends openssl')
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`)
  }
}

export function testPki(label: string): TestPki {
  const dir = mkdtempSync(join(tmpdir(), `keygate-pki-${label}-`))
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=Keygate test CA ${label}`], dir)
  let serial = 0
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    issue(name, options = {}) {
      const base = `${name}-${++serial}`
      const ext = options.client
        ? 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n'
        : 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n'
      writeFileSync(join(dir, `${base}.ext`), ext)
      const days = String(options.days ?? 2)
      if (options.selfSigned) {
        openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', days, '-subj', `/CN=${name}`, '-addext', ext.trim().split('\n').at(-1)!], dir)
      } else {
        openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`], dir)
        openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${base}.pem`, '-days', days, '-extfile', `${base}.ext`], dir)
      }
      const certFile = join(dir, `${base}.pem`)
      const keyFile = join(dir, `${base}.key`)
      return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
