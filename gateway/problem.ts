import type { ServerResponse } from 'node:http'
import { ERROR_CODES, type ErrorCode } from '../core/error-codes.ts'
import { problemBody, problemHeaders } from '../core/problem.ts'

export { problemBody, problemHeaders }

/** Writes the problem response unless headers already went out (then the connection is cut instead). */
export function sendProblem(res: ServerResponse, code: ErrorCode, options: { detail?: string; instance?: string; headers?: Record<string, string> } = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify(problemBody(code, options))
  res.writeHead(ERROR_CODES[code].status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...problemHeaders(code),
    ...options.headers,
  })
  res.end(body)
}
