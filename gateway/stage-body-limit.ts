import type { IncomingMessage } from 'node:http'
import { Transform, type Readable } from 'node:stream'

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
