/** Builds Keygate's one error body, shared by the gateway and the admin API. */
import { ERROR_CODES, type ErrorCode, type ErrorCodeSpec } from './error-codes.ts'

/** The one error body of Keygate (RFC 9457 problem+json) with its stable `code`. */
export function problemBody(code: ErrorCode, options: { detail?: string; instance?: string; extra?: Readonly<Record<string, unknown>> } = {}) {
  const spec = ERROR_CODES[code]
  return {
    type: `urn:keygate:error:${code}`,
    title: spec.title,
    status: spec.status,
    detail: options.detail ?? spec.detail,
    code,
    ...(options.instance ? { instance: options.instance } : {}),
    ...options.extra,
  }
}

/** Headers that go with a code: the RFC 6750 Bearer challenge for 401 and 403-scope answers, a fixed Retry-After. */
export function problemHeaders(code: ErrorCode): Record<string, string> {
  const spec: ErrorCodeSpec = ERROR_CODES[code]
  const retry: Record<string, string> = spec.retryAfter === undefined ? {} : { 'retry-after': String(spec.retryAfter) }
  if (spec.bearerError === undefined) return retry
  return { ...retry, 'www-authenticate': spec.bearerError === null ? 'Bearer' : `Bearer error="${spec.bearerError}"` }
}
