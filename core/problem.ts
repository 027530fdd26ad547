/**
 * Keygate's one error response (RFC 9457 problem+json with a stable `code`), built here once for every
 * transport: `problemResponse` is status, headers and body; the adapters only write it — `writeProblem` on a
 * Node response (the gateway's pipeline and servers), `rawProblem` as the bytes of a whole HTTP/1.1 response on
 * a socket that is no request (a refused upgrade, a request Node's parser refused), and the admin API's
 * `sendError` on an Express response.
 */
import type { ServerResponse } from 'node:http'
import { ERROR_CODES, type ErrorCode, type ErrorCodeSpec } from './error-codes.ts'

export interface ProblemOptions {
  detail?: string
  instance?: string
  /** Extra members of the body (for example `errors` of a validation failure). Never a secret. */
  extra?: Readonly<Record<string, unknown>>
  /** Extra response headers (the request id, `connection: close`). */
  headers?: Readonly<Record<string, string>>
}

export interface ProblemResponse {
  status: number
  title: string
  headers: Record<string, string>
  body: string
}

/** The one error body of Keygate with its stable `code`. */
export function problemBody(code: ErrorCode, options: Omit<ProblemOptions, 'headers'> = {}) {
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

/** The whole response for `code`: status, headers (content type, length, no-store, the code's own) and body. */
export function problemResponse(code: ErrorCode, options: ProblemOptions = {}): ProblemResponse {
  const spec = ERROR_CODES[code]
  const body = JSON.stringify(problemBody(code, options))
  return {
    status: spec.status,
    title: spec.title,
    headers: {
      'content-type': 'application/problem+json',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      ...problemHeaders(code),
      ...options.headers,
    },
    body,
  }
}

/** Writes the problem response unless headers already went out (then the connection is cut instead). */
export function writeProblem(res: ServerResponse, code: ErrorCode, options?: ProblemOptions): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const p = problemResponse(code, options)
  res.writeHead(p.status, p.headers)
  res.end(p.body)
}

/** The bytes of the whole HTTP/1.1 problem response, with `connection: close`, for a raw socket. */
export function rawProblem(code: ErrorCode, options: ProblemOptions = {}): string {
  const p = problemResponse(code, { ...options, headers: { ...options.headers, connection: 'close' } })
  let head = `HTTP/1.1 ${p.status} ${p.title}\r\n`
  for (const name in p.headers) head += `${name}: ${p.headers[name]}\r\n`
  return `${head}\r\n${p.body}`
}
