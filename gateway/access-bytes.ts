import type { Socket } from 'node:net'

/**
 * Bytes of one exchange for the access line, as the connection counted them (request line, headers and body
 * in; status line, headers and body out, as nginx's `request_length` and `bytes_sent`): the connection's
 * counters since the previous exchange on it ended. Two numbers kept on the socket, no allocation per request.
 */
const kIn = Symbol('keygate.bytesIn')
const kOut = Symbol('keygate.bytesOut')
type Counted = Socket & { [kIn]?: number; [kOut]?: number }

type Dispatched = Socket & { _bytesDispatched?: number; _pendingData?: unknown }

/**
 * `socket.bytesWritten`: what the socket handed to the kernel plus what it still buffers. Node's getter walks
 * (and copies) the write buffer on every call; with nothing buffered, which is the usual case once an answer
 * ended, the count it starts from is the whole answer.
 */
function bytesWritten(socket: Dispatched): number {
  const dispatched = socket._bytesDispatched
  if (typeof dispatched === 'number' && socket.writableLength === 0 && !socket._pendingData) return dispatched
  return socket.bytesWritten
}

/** Valid until the next call: one result object is reused. */
const scratch = { in: 0, out: 0 }

/** The bytes read and written on a request's connection (`req.socket`, taken while the request holds it) since the previous call for it. */
export function exchangeBytes(connection: Socket): { readonly in: number; readonly out: number } {
  const socket = connection as Counted
  const read = socket.bytesRead
  const written = bytesWritten(socket)
  scratch.in = read - (socket[kIn] ?? 0)
  scratch.out = written - (socket[kOut] ?? 0)
  socket[kIn] = read
  socket[kOut] = written
  return scratch
}
