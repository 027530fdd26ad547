import { randomFillSync } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the gateway is one hop of the client's trace. A
 * valid inbound `traceparent` is continued (same trace id, its span id as the parent, its flags) and its
 * `tracestate` passed on; without one, or with a malformed one, a new trace starts (sampled) and any
 * `tracestate` is dropped, as the specification asks. The upstream always gets a new span id: the gateway's
 * hop, which is also the span exported when OpenTelemetry export is on (`tracing-otlp.ts`).
 */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string
  /** The caller's span id (16 hex digits), or undefined when the trace started here. */
  readonly parentId: string | undefined
  /** The gateway's span: the parent id the upstream sees. */
  spanId: string
  /** Two hex digits; `01`: sampled. */
  readonly flags: string
  /** The inbound `tracestate`, when valid and the trace was continued. */
  readonly state: string | undefined
}

// Version 00 exactly; a later version may append fields after a dash, which are ignored (the spec's rule).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^]*)?$/
const ZERO_TRACE = '00000000000000000000000000000000'
const ZERO_SPAN = '0000000000000000'
/** A list member: `key=value`, key simple (`vendor`) or multi-tenant (`tenant@vendor`), value printable without `,` and `=`. */
const TRACESTATE_MEMBER = /^[ \t]*(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e][ \t]*$/
/** Beyond this a `tracestate` is not passed on (the specification asks every hop to carry at least 512 characters). */
const TRACESTATE_MAX = 512

// Ids come from a pooled random buffer: one system call per 256 requests rather than two per request, and the
// pool made hex once when it is filled, an id being a slice of that (a conversion per id cost ~90 ns a request).
const pool = Buffer.allocUnsafe(8192)
let poolHex = ''
let offset = pool.length
function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool)
    poolHex = pool.toString('hex')
    offset = 0
  }
  const hex = poolHex.slice(offset * 2, (offset + bytes) * 2)
  offset += bytes
  return hex
}

/** A span id: 16 hex digits, never all zeros. */
export function newSpanId(): string {
  for (;;) {
    const id = randomHex(8)
    if (id !== ZERO_SPAN) return id
  }
}

/** A trace id: 32 hex digits, never all zeros. */
export function newTraceId(): string {
  for (;;) {
    const id = randomHex(16)
    if (id !== ZERO_TRACE) return id
  }
}

/** Whether a `tracestate` value is one the gateway passes on: at most 32 well-formed members, 512 characters. */
export function validTracestate(value: string): boolean {
  if (value.length > TRACESTATE_MAX) return false
  const members = value.split(',')
  if (members.length > 32) return false
  for (const m of members) if (m.trim() !== '' && !TRACESTATE_MEMBER.test(m)) return false
  return true
}

/** The trace context of a request: continued from its `traceparent` when valid, else started here. */
export function traceContextOf(req: IncomingMessage): TraceContext {
  const header = req.headers.traceparent
  const m = typeof header === 'string' && header.length <= 512 ? TRACEPARENT.exec(header) : null
  if (m && m[1] !== 'ff' && !(m[1] === '00' && m[5] !== undefined) && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN) {
    const state = req.headers.tracestate
    return { traceId: m[2]!, parentId: m[3], spanId: newSpanId(), flags: m[4]!, state: typeof state === 'string' && validTracestate(state) ? state : undefined }
  }
  return { traceId: newTraceId(), parentId: undefined, spanId: newSpanId(), flags: '01', state: undefined }
}

/** Appends the upstream's `traceparent` (and `tracestate`) to a flat header list. */
export function pushTraceHeaders(headers: string[], trace: TraceContext): void {
  headers.push('traceparent', `00-${trace.traceId}-${trace.spanId}-${trace.flags}`)
  if (trace.state) headers.push('tracestate', trace.state)
}

/** A request as a span: what the access line says, with the span's times (ms since the epoch). */
export interface RequestSpan {
  readonly method: string
  readonly route: string
  readonly path: string
  readonly status: number
  readonly code: string | undefined
  readonly cause: string | undefined
  readonly upstream: string | undefined
  readonly startMs: number
  readonly endMs: number
}

/** Where spans go (OpenTelemetry export, `tracing-otlp.ts`); `close` sends what is still buffered. */
export interface SpanRecorder {
  record(trace: TraceContext, span: RequestSpan): void
  close(): Promise<void>
}
