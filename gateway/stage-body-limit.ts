import type { IncomingMessage } from 'node:http'
import { Readable, Transform } from 'node:stream'

/**
 * The request body as it goes upstream, held to the route's `max_body_bytes`. A declared Content-Length over
 * the limit is refused before a byte is read; a chunked body is counted as it streams and cut when it passes
 * the limit (nothing is buffered either way).
 */
export type BodyResult =
  | { ok: true; body: Readable | null; exceeded(): boolean }
  | { ok: false; code: 'BODY_TOO_LARGE' }

const never = () => false
const NO_BODY: BodyResult = { ok: true, body: null, exceeded: never }

export function limitBody(req: IncomingMessage, max: number): BodyResult {
  const chunked = req.headers['transfer-encoding'] !== undefined
  const declared = req.headers['content-length']
  if (!chunked) {
    if (declared === undefined || declared === '0') return NO_BODY
    if (Number(declared) > max) return { ok: false, code: 'BODY_TOO_LARGE' }
    return { ok: true, body: req, exceeded: never }
  }
  let seen = 0
  let over = false
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length
      if (seen > max) {
        over = true
        req.unpipe(counter)
        req.resume()
        return done(new Error('request body over the route limit'))
      }
      done(null, chunk)
    },
  })
  req.on('error', (err) => counter.destroy(err))
  req.pipe(counter)
  return { ok: true, body: counter, exceeded: () => over }
}

export type ReadFirstResult =
  | { ok: true; body: Readable }
  | { ok: false; code: 'BODY_TIMEOUT' | 'BODY_TOO_LARGE' | 'ABORTED' }

/**
 * Reads the whole request body before the upstream is involved (route option `read_body_first`, the default on
 * public routes): a slow client then holds one of the gateway's sockets, never a connection of the upstream's
 * pool, so 300 slow uploads to a public login cannot starve the authenticated calls that share its upstream.
 * The body must be complete within `timeoutMs` (0: no deadline besides the idle timeout): past it, BODY_TIMEOUT.
 * Held in memory, so only for bodies the route keeps small (`max_body_bytes`).
 */
export function readBodyFirst(body: Readable, timeoutMs: number, exceeded: () => boolean): Promise<ReadFirstResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let settled = false
    const finish = (result: ReadFirstResult) => {
      if (settled) return
      settled = true
      if (timer) clearTimeout(timer)
      body.off('data', onData)
      if (!result.ok) body.pause()
      resolve(result)
    }
    const timer = timeoutMs > 0 ? setTimeout(() => finish({ ok: false, code: 'BODY_TIMEOUT' }), timeoutMs) : undefined
    const onData = (chunk: Buffer) => { chunks.push(chunk) }
    body.on('data', onData)
    body.once('end', () => finish({ ok: true, body: Readable.from(chunks.length ? [Buffer.concat(chunks)] : []) }))
    body.once('error', () => finish({ ok: false, code: exceeded() ? 'BODY_TOO_LARGE' : 'ABORTED' }))
  })
}
