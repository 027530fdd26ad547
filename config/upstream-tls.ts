import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { FileConfig } from './schema.ts'

/**
 * An upstream's own TLS settings, read from the files the route file names: `ca_file` (the CAs its
 * certificate is checked against, instead of the system's: a private CA) and `cert_file` + `key_file` (the
 * client certificate the gateway presents, for upstreams that require mutual TLS). Relative paths are read from
 * the route file's directory. The files are read at start and on every route reload.
 */
export interface UpstreamTls {
  /** Identifies the material (a digest of it), so routes with the same settings share one connection pool. */
  readonly id: string
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
}

type UpstreamConfig = FileConfig['upstreams'][string]

const PEM_CERT = /-----BEGIN CERTIFICATE-----/

/**
 * The upstream's TLS material, or the problems with it, each naming its field (`ca_file: …`); the file's
 * contents never appear in a message.
 */
export function readUpstreamTls(upstream: UpstreamConfig, baseDir: string): { tls?: UpstreamTls; problems: string[] } {
  const { ca_file: caFile, cert_file: certFile, key_file: keyFile } = upstream
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return { problems: [] }
  const problems: string[] = []
  const urls = ([] as string[]).concat(upstream.url)
  const plain = urls.filter((u) => !u.startsWith('https://'))
  if (plain.length) {
    const fields = [caFile !== undefined && 'ca_file', certFile !== undefined && 'cert_file', keyFile !== undefined && 'key_file'].filter(Boolean).join(', ')
    problems.push(`${fields}: TLS settings apply to https:// upstreams only, but ${plain.length === urls.length ? 'its url is' : 'some of its urls are'} not https://`)
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push(certFile === undefined ? 'key_file: a client key needs its certificate (cert_file)' : 'cert_file: a client certificate needs its private key (key_file)')
  }
  const read = (field: string, file: string | undefined): string | undefined => {
    if (file === undefined) return undefined
    const path = isAbsolute(file) ? file : resolve(baseDir, file)
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      problems.push(`${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
      return undefined
    }
  }
  const ca = read('ca_file', caFile)
  const cert = read('cert_file', certFile)
  const key = read('key_file', keyFile)
  if (ca !== undefined) {
    if (!PEM_CERT.test(ca)) problems.push(`ca_file: ${caFile} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`)
    else {
      try {
        createSecureContext({ ca })
      } catch (err) {
        problems.push(`ca_file: ${caFile} is not a valid PEM certificate bundle (${(err as Error).message})`)
      }
    }
  }
  if (cert !== undefined) {
    if (!PEM_CERT.test(cert)) problems.push(`cert_file: ${certFile} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`)
    else {
      try {
        const x509 = new X509Certificate(cert)
        if (Date.parse(x509.validTo) < Date.now()) problems.push(`cert_file: ${certFile} expired on ${new Date(x509.validTo).toISOString()}`)
      } catch (err) {
        problems.push(`cert_file: ${certFile} is not a valid PEM certificate (${(err as Error).message})`)
      }
    }
  }
  if (cert !== undefined && key !== undefined && !problems.length) {
    try {
      createSecureContext({ cert, key })
    } catch (err) {
      const message = (err as Error).message
      problems.push(/mismatch/i.test(message) ? `key_file: ${keyFile} is not the private key of ${certFile}` : `key_file: ${keyFile} is not a usable PEM private key for ${certFile} (${message})`)
    }
  }
  if (problems.length) return { problems }
  const id = createHash('sha256').update(`${ca ?? ''}\0${cert ?? ''}\0${key ?? ''}`).digest('hex')
  return { tls: { id, ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) }, problems }
}
