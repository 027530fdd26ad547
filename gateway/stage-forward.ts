import type { ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { Dispatcher } from 'undici'
import type { ErrorCode } from '../core/error-codes.ts'
import { sanitizeResponseHeaders } from './stage-sanitize.ts'

/**
 * Stage 7: sends the request upstream with undici and streams both bodies; nothing is buffered, so an upload
 * or an SSE stream costs the same memory at any size. Failures before the response started become
 * UPSTREAM_UNAVAILABLE (502) or UPSTREAM_TIMEOUT (504); after it started, the client connection is cut.
 */
export interface ForwardRequest {
  origin: string
  path: string
  method: string
  headers: string[]
  body: import('node:stream').Readable | null
  /** Until the response headers arrive. */
  timeoutMs: number
  /** Longest silence while the response body streams. */
  idleTimeoutMs: number
  /** Called when the response starts streaming to the client; its return runs when the stream ends. */
  onResponse?: () => (() => void) | undefined
}

export type ForwardOutcome =
  | { ok: true; status: number; upstreamMs: number }
  | { ok: false; code: Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT'>; upstreamMs: number }
  /** The client went away or the stream broke after the response started. */
  | { ok: false; code: 'ABORTED'; upstreamMs: number }

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export async function forward(dispatcher: Dispatcher, res: ServerResponse, f: ForwardRequest): Promise<ForwardOutcome> {
  const started = performance.now()
  const abort = new AbortController()
  const onClose = () => { if (!res.writableFinished) abort.abort() }
  res.once('close', onClose)
  let upstream: Dispatcher.ResponseData
  try {
    upstream = await dispatcher.request({
      origin: f.origin,
      path: f.path,
      method: f.method as Dispatcher.HttpMethod,
      headers: f.headers,
      body: f.body,
      headersTimeout: f.timeoutMs,
      bodyTimeout: f.idleTimeoutMs,
      signal: abort.signal,
    })
  } catch (err) {
    res.off('close', onClose)
    const upstreamMs = performance.now() - started
    if (abort.signal.aborted) return { ok: false, code: 'ABORTED', upstreamMs }
    const code = (err as { code?: string }).code ?? ''
    return { ok: false, code: TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', upstreamMs }
  }
  const upstreamMs = performance.now() - started
  res.writeHead(upstream.statusCode, sanitizeResponseHeaders(upstream.headers))
  // Server-sent events must reach the client as they are written.
  if (String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream')) res.flushHeaders()
  const ended = f.onResponse?.()
  try {
    await pipeline(upstream.body, res)
  } catch {
    ended?.()
    res.off('close', onClose)
    upstream.body.destroy()
    if (!res.destroyed) res.destroy()
    return { ok: false, code: 'ABORTED', upstreamMs }
  }
  ended?.()
  res.off('close', onClose)
  return { ok: true, status: upstream.statusCode, upstreamMs }
}
