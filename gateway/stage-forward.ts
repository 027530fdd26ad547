import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { ErrorCode } from '../core/error-codes.ts'
import { sanitizeResponseHeaders } from './stage-sanitize.ts'
import { upstreamCause, type UpstreamCause } from './upstream-failure.ts'

/**
 * Stage 7: sends the request upstream with undici and streams both bodies; nothing is buffered, so an upload
 * or an SSE stream costs the same memory at any size. Failures before the response started become
 * UPSTREAM_UNAVAILABLE (502) or UPSTREAM_TIMEOUT (504); after it started, the client connection is cut.
 *
 * The response is relayed by a dispatch handler that writes undici's chunks straight into the client's
 * response, with backpressure (a full client pauses the upstream parser until it drains). `request()` plus
 * `stream.pipeline()` did the same through an intermediate Readable, two AbortControllers and a promise per
 * stage, which cost about a fifth of the gateway's CPU per request.
 */
export interface ForwardRequest {
  readonly origin: string
  readonly path: string
  readonly method: string
  readonly headers: string[]
  readonly body: Readable | null
  /**
   * Until the response headers arrive: from the dispatch (waiting for a pooled connection or for the TCP
   * handshake included) without a request body; with one, the wait for a connection, then from the end of
   * the upload (undici's headers timeout, which restarts with every body chunk written).
   */
  readonly timeoutMs: number
  /** Longest silence while the response body streams. */
  readonly idleTimeoutMs: number
  /** Headers added to the response (`[name, value, …]`, lowercase names) unless the upstream sent them itself. */
  readonly responseHeaders?: readonly string[]
  /**
   * The response starts streaming to the client (`eventStream`: its content type is `text/event-stream`); the
   * function returned runs when the stream ends.
   */
  onResponse?(eventStream: boolean): (() => void) | undefined
  /** The client is not reading: the upstream is paused until it drains. */
  onBackpressure?(): void
  /** How the exchange ended; called once. */
  onOutcome(outcome: ForwardOutcome): void
}

export type ForwardOutcome =
  | { ok: true; status: number; upstreamMs: number }
  | { ok: false; code: Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT'>; upstreamMs: number; failure: UpstreamCause }
  /** The client went away or the stream broke after the response started. */
  | { ok: false; code: 'ABORTED'; upstreamMs: number }

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

class UpstreamTimeoutError extends Error {
  override readonly name = 'UpstreamTimeoutError'
  readonly code = 'UND_ERR_HEADERS_TIMEOUT'
}

const kRelay = Symbol('keygate.relay')
type RelayedResponse = ServerResponse & { [kRelay]?: Relay }

class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError'
}

/** One exchange: undici's (legacy, unwrapped) handler interface on one side, the client's response on the other. */
class Relay {
  private abortUpstream: ((err: Error) => void) | undefined
  private clientGone = false
  private timedOut = false
  /** timeout_ms from the dispatch: undici's own timers start only once a socket is connected. */
  timer: NodeJS.Timeout | undefined
  private responding = false
  private completed = false
  private settled = false
  private status = 0
  private upstreamMs = 0
  private resumeUpstream: (() => void) | undefined
  private ended: (() => void) | undefined

  constructor(
    private readonly res: RelayedResponse,
    private readonly f: ForwardRequest,
    private readonly started: number,
  ) {}

  onConnect(abort: (err: Error) => void): void {
    if (this.clientGone) return abort(new ClientClosedError())
    if (this.timedOut) return abort(new UpstreamTimeoutError())
    this.abortUpstream = abort
    // With a body, the upload may take longer than timeout_ms: from here undici's headers timeout counts, from
    // the last chunk written.
    if (this.f.body) this.clearTimer()
  }

  /** timeout_ms passed without response headers: a 504, whether or not a connection was ever made. */
  timeout(): void {
    this.timer = undefined
    if (this.responding || this.settled) return
    this.timedOut = true
    // Connected: undici answers with onError, which settles. Still connecting (a handshake that never
    // completes, a full pool): answer now; onConnect aborts the request if it ever gets a socket.
    if (this.abortUpstream) return this.abortUpstream(new UpstreamTimeoutError())
    this.keepClientForAnswer()
    this.settle({ ok: false, code: 'UPSTREAM_TIMEOUT', upstreamMs: performance.now() - this.started, failure: upstreamCause(undefined, true) })
  }

  /**
   * Before the response started the client gets a problem answer, so its connection must outlive the failed
   * exchange: a request body not read to its end is left alone (destroying an unfinished request destroys its
   * socket, and the answer with it) and the connection closes after the answer, the rest of the upload unread.
   */
  private keepClientForAnswer(): void {
    const body = this.f.body
    if (body && !body.readableEnded) this.res.shouldKeepAlive = false
  }

  private clearTimer(): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer)
    this.timer = undefined
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx interim answers are not relayed (undici's request() dropped them too).
    if (statusCode < 200) return true
    this.clearTimer()
    this.upstreamMs = performance.now() - this.started
    this.status = statusCode
    this.resumeUpstream = resume
    const { headers, eventStream } = sanitizeResponseHeaders(rawHeaders)
    const extra = this.f.responseHeaders
    if (extra) for (let i = 0; i < extra.length; i += 2) if (!hasHeader(headers, extra[i]!)) headers.push(extra[i]!, extra[i + 1]!)
    // A throw here (a header Node will not write) reaches onError before anything was sent: a 502.
    this.res.writeHead(statusCode, headers)
    this.responding = true
    if (eventStream) this.res.flushHeaders()
    this.ended = this.f.onResponse?.(eventStream)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true
    this.res.once('drain', this.resumeUpstream!)
    this.f.onBackpressure?.()
    return false
  }

  onComplete(): void {
    this.completed = true
    this.res.end()
  }

  onError(err: Error & { code?: string }): void {
    if (!this.responding) {
      this.keepClientForAnswer()
      const upstreamMs = performance.now() - this.started
      this.settle(this.clientGone ? { ok: false, code: 'ABORTED', upstreamMs } : { ok: false, code: this.timedOut || TIMEOUT_CODES.has(err.code ?? '') ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', upstreamMs, failure: upstreamCause(err, this.timedOut) })
      return
    }
    // As undici's request() did: a request body still flowing is destroyed with the exchange.
    const body = this.f.body
    if (body && !body.destroyed) {
      body.on('error', noop)
      body.destroy(err)
    }
    if (!this.res.destroyed) this.res.destroy()
    this.settle({ ok: false, code: 'ABORTED', upstreamMs: this.upstreamMs })
  }

  /** The client's response closed: after it finished (the normal end), or because the client went away. */
  closed(): void {
    if (this.completed && this.res.writableFinished) return this.settle({ ok: true, status: this.status, upstreamMs: this.upstreamMs })
    this.clientGone = true
    // undici answers with onError, which settles; before the connection exists, onConnect aborts.
    this.abortUpstream?.(new ClientClosedError())
    if (this.responding || this.completed) this.settle({ ok: false, code: 'ABORTED', upstreamMs: this.upstreamMs })
  }

  private settle(outcome: ForwardOutcome): void {
    if (this.settled) return
    this.settled = true
    this.clearTimer()
    this.res[kRelay] = undefined
    this.ended?.()
    this.f.onOutcome(outcome)
  }
}

function noop(): void {}

function hasHeader(list: readonly string[], name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true
  return false
}

function relayTimeout(relay: Relay): void {
  relay.timeout()
}

function onResponseClose(this: RelayedResponse): void {
  this.off('close', onResponseClose)
  this[kRelay]?.closed()
}

/** Sends `f` upstream and relays the answer to `res`; `f.onOutcome` hears how it ended. */
export function forward(dispatcher: Dispatcher, res: ServerResponse, f: ForwardRequest): void {
  const relay = new Relay(res, f, performance.now())
  ;(res as RelayedResponse)[kRelay] = relay
  res.on('close', onResponseClose)
  relay.timer = setTimeout(relayTimeout, f.timeoutMs, relay)
  dispatcher.dispatch({
    origin: f.origin,
    path: f.path,
    method: f.method as Dispatcher.HttpMethod,
    headers: f.headers,
    body: f.body,
    headersTimeout: f.timeoutMs,
    bodyTimeout: f.idleTimeoutMs,
  }, relay as unknown as Dispatcher.DispatchHandler)
}
