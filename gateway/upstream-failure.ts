/**
 * Why an upstream exchange failed before its response started, for the access line and the metrics: the
 * system error code (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`, …), `timeout`, or `TLS` (the certificate or
 * the handshake was refused; the access line also carries OpenSSL's own code as `cause_detail`).
 */
export interface UpstreamCause {
  readonly cause: string
  /** The error's own code when `cause` is a class of it (TLS), else undefined. */
  readonly detail: string | undefined
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])
// OpenSSL's verification codes (node reports them as the error's code) and Node's TLS errors.
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|CERT_REJECTED|CERT_UNTRUSTED|ERR_OSSL_)/

/** The cause of a failed exchange, from the error undici reported (or the gateway's own timeout). */
export function upstreamCause(err: (Error & { code?: string; library?: string; reason?: string }) | undefined, timedOut: boolean): UpstreamCause {
  const code = err?.code
  if (timedOut || (code !== undefined && TIMEOUTS.has(code))) return { cause: 'timeout', detail: code === 'ETIMEDOUT' || code?.startsWith('UND_ERR_') ? code : undefined }
  if ((code !== undefined && TLS_CODE.test(code)) || err?.library === 'SSL routines') return { cause: 'TLS', detail: code ?? err?.reason }
  if (code !== undefined && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return { cause: code, detail: undefined }
  return { cause: 'other', detail: undefined }
}

/** The causes a metric label may take (bounded); any other is `other`. */
const LABELS = new Set(['timeout', 'TLS', 'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'other'])
export function causeLabel(cause: string | undefined): string {
  return cause !== undefined && LABELS.has(cause) ? cause : 'other'
}
