import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ErrorCode } from './error-codes.ts'
import { rawProblem } from './problem.ts'

/**
 * The HTTP/1.1 front door of Keygate's servers, before any route: what a server answers when a request never
 * became a request (Node's parser refused its bytes, its headers were too large, or did not arrive in time),
 * and the request shapes refused although Node parsed them (another HTTP version, no Host or two of them, too
 * many header fields). Node would answer a bare `400 Bad Request`, or route a request with two Hosts by the
 * first; Keygate answers with its own problem body and code and closes the connection, because after a framing
 * error nothing else on it can be trusted (that is how request smuggling works). Nothing reaches an upstream.
 */
export interface HttpLimits {
  /** Longest time for the request line and headers (`headersTimeout`). */
  headersTimeoutMs: number
  /** Largest request line plus headers, bytes (`maxHeaderSize`). */
  maxHeaderBytes: number
  /** Most header fields; checked on each request with `tooManyHeaders`. */
  maxHeaders: number
}

/** The `http.createServer` options that enforce `limits` (the request count check is `tooManyHeaders`). */
export function serverOptions(limits: HttpLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    // Node checks the headers timeout on this period (30 s by default, which would let slow headers run on).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    maxHeaderSize: limits.maxHeaderBytes,
    // Node drops the fields past this count without a word: one more than allowed shows that there were more.
    maxHeadersCount: limits.maxHeaders + 1,
    // Checked by requestRefusal, which answers with Keygate's code instead of Node's bare 400.
    requireHostHeader: false,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  }
}

/** Why a parsed request is refused before any route sees it, or undefined when its shape is acceptable. */
export function requestRefusal(req: IncomingMessage, limits: HttpLimits): ErrorCode | undefined {
  const raw = req.rawHeaders
  if (raw.length > limits.maxHeaders * 2) return 'HEADERS_TOO_LARGE'
  // HTTP/0.9 (no headers, no Host) and anything that is not 1.x.
  if (req.httpVersionMajor !== 1) return 'REQUEST_MALFORMED'
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (two would let the gateway and an upstream route differently).
  if (hosts > 1 || (hosts === 0 && req.httpVersionMinor >= 1)) return 'REQUEST_MALFORMED'
  return undefined
}

export function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE'
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT') return 'REQUEST_TIMEOUT'
  return 'REQUEST_MALFORMED'
}

/** The raw bytes of the problem response for `code`, with `connection: close` (see `core/problem.ts`). */
export function rawProblemResponse(code: ErrorCode): string {
  return rawProblem(code)
}

/**
 * Installs the answer on `server`. `onRefused` hears each refusal (for the access log and metrics); the bytes
 * that were refused are never passed on, as they may hold a credential.
 */
export function answerClientErrors(server: Server, onRefused: (code: ErrorCode, err: NodeJS.ErrnoException) => void = () => {}): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset or a write after the peer left is not a request error: there is no one to answer.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
      socket.destroy()
      return
    }
    const code = clientErrorCode(err)
    onRefused(code, err)
    // A response already under way on this connection (pipelining) cannot be followed by another: cut it.
    if ((socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy()
      return
    }
    refuseConnection(socket, code)
  })
}

/**
 * Answers `code` on a raw connection and closes it once the answer is written. Not a half-close: a client that
 * never reads would otherwise hold the connection open.
 */
export function refuseConnection(socket: Duplex, code: ErrorCode): void {
  socket.end(rawProblemResponse(code), () => socket.destroy())
}

/** The limits as the settings declare them (config/schema.ts). */
export function httpLimits(env: { KEYGATE_HEADERS_TIMEOUT_MS: number; KEYGATE_MAX_HEADER_BYTES: number; KEYGATE_MAX_HEADERS: number }): HttpLimits {
  return { headersTimeoutMs: env.KEYGATE_HEADERS_TIMEOUT_MS, maxHeaderBytes: env.KEYGATE_MAX_HEADER_BYTES, maxHeaders: env.KEYGATE_MAX_HEADERS }
}
