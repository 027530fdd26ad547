import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Server as TlsServer } from 'node:tls'
import { createSecureContext } from 'node:tls'
import type { Cleanups } from '../core/cleanups.ts'
import { watchFiles } from '../core/file-watch.ts'
import type { Logger } from '../core/logger.ts'

/**
 * The TLS listener's certificate and key (`KEYGATE_TLS_CERT_FILE`, `KEYGATE_TLS_KEY_FILE`): read and checked at
 * start, and read again when either file changes (a renewal by cert-manager or certbot, a Kubernetes Secret's
 * `..data` swap) or on SIGHUP. A pair that cannot be read, does not parse or does not match keeps the one in
 * force (new connections get it; open ones keep theirs).
 */
export interface ServerCertificate {
  readonly cert: string
  readonly key: string
  /** What the access and reload lines say about it: never the key. */
  readonly subject: string
  readonly notAfter: string
  readonly fingerprint: string
}

/** Reads and checks the pair; the problems name the file and what is wrong, never its contents. */
export function readServerCertificate(certFile: string, keyFile: string): { certificate?: ServerCertificate; problems: string[] } {
  const problems: string[] = []
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      problems.push(`environment: ${name} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
      return undefined
    }
  }
  const cert = read('KEYGATE_TLS_CERT_FILE', certFile)
  const key = read('KEYGATE_TLS_KEY_FILE', keyFile)
  if (cert === undefined || key === undefined) return { problems }
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    return { problems: [`environment: KEYGATE_TLS_CERT_FILE ${certFile}: not a PEM certificate (${(err as Error).message})`] }
  }
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    const message = (err as Error).message
    return { problems: [/mismatch/i.test(message) ? `environment: KEYGATE_TLS_KEY_FILE ${keyFile}: not the private key of ${certFile}` : `environment: KEYGATE_TLS_KEY_FILE ${keyFile}: not a usable PEM private key (${message})`] }
  }
  return { certificate: { cert, key, subject: x509.subject.replace(/\n/g, ', '), notAfter: new Date(x509.validTo).toISOString(), fingerprint: x509.fingerprint256 }, problems }
}

/** Watches the pair's files (and the directories their links resolve to) and swaps the server's context when they change. */
export function watchServerCertificate(deps: {
  certFile: string
  keyFile: string
  server: Pick<TlsServer, 'setSecureContext'>
  initial: ServerCertificate
  logger: Logger
  cleanups: Cleanups
  watch: boolean
  /** Told about each certificate put in force (start and reloads): its expiry, for the metric. */
  onLoaded?(certificate: ServerCertificate): void
}): { reload(trigger: string): boolean } {
  const { certFile, keyFile, logger } = deps
  let current = deps.initial
  deps.onLoaded?.(current)
  const reload = (trigger: string): boolean => {
    const { certificate, problems } = readServerCertificate(certFile, keyFile)
    if (!certificate) {
      logger.error('TLS certificate reload failed; the previous certificate keeps serving', { trigger, problems })
      return false
    }
    if (certificate.cert === current.cert && certificate.key === current.key) return true
    deps.server.setSecureContext({ cert: certificate.cert, key: certificate.key })
    current = certificate
    deps.onLoaded?.(certificate)
    logger.info('TLS certificate reloaded', { trigger, subject: certificate.subject, not_after: certificate.notAfter, fingerprint: certificate.fingerprint })
    return true
  }
  if (deps.watch) {
    // A renewal writes two files: one reload once both are written (see core/file-watch.ts).
    const watching = watchFiles([certFile, keyFile], {
      debounceMs: 200,
      onChange: () => reload('file change'),
      onWatchError: (dir, error) => logger.warn('cannot watch the TLS certificate\'s directory; SIGHUP still reloads it', { dir, error }),
    })
    deps.cleanups.unshift(async () => watching.close())
  }
  return { reload }
}
