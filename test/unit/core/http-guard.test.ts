import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { clientErrorCode, rawProblemResponse, requestRefusal, serverOptions } from '../../../core/http-guard.ts'

const limits = { headersTimeoutMs: 5000, maxHeaderBytes: 8192, maxHeaders: 3 }
const request = (rawHeaders: string[], version = '1.1') =>
  ({ rawHeaders, httpVersionMajor: Number(version.split('.')[0]), httpVersionMinor: Number(version.split('.')[1]) }) as unknown as IncomingMessage

t.test('a well-formed request is not refused', async (t) => {
  t.equal(requestRefusal(request(['Host', 'a', 'Accept', '*/*']), limits), undefined)
  t.equal(requestRefusal(request([], '1.0'), limits), undefined, 'HTTP/1.0 needs no Host')
})

t.test('the shapes Node parses but Keygate refuses', async (t) => {
  t.equal(requestRefusal(request(['Host', 'a', 'A', '1', 'B', '2', 'C', '3']), limits), 'HEADERS_TOO_LARGE', 'one field more than allowed')
  t.equal(requestRefusal(request(['Host', 'a', 'A', '1', 'B', '2']), limits), undefined, 'exactly the allowed count')
  t.equal(requestRefusal(request(['Accept', '*/*']), limits), 'REQUEST_MALFORMED', 'HTTP/1.1 without Host')
  t.equal(requestRefusal(request(['Host', 'a', 'HOST', 'b']), limits), 'REQUEST_MALFORMED', 'two Hosts, in any case')
  t.equal(requestRefusal(request(['Host', 'a'], '0.9'), limits), 'REQUEST_MALFORMED', 'HTTP/0.9')
  t.equal(requestRefusal(request(['Host', 'a'], '2.0'), limits), 'REQUEST_MALFORMED', 'HTTP/2 over an HTTP/1 parser')
})

t.test('parser errors map to their codes', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code })
  t.equal(clientErrorCode(err('HPE_HEADER_OVERFLOW')), 'HEADERS_TOO_LARGE')
  t.equal(clientErrorCode(err('ERR_HTTP_REQUEST_TIMEOUT')), 'REQUEST_TIMEOUT')
  t.equal(clientErrorCode(err('HPE_UNEXPECTED_CONTENT_LENGTH')), 'REQUEST_MALFORMED')
  t.equal(clientErrorCode(err('HPE_INVALID_TRANSFER_ENCODING')), 'REQUEST_MALFORMED')
})

t.test('the raw answer is one complete HTTP/1.1 response that closes the connection', async (t) => {
  const raw = rawProblemResponse('REQUEST_TIMEOUT')
  const [head, body] = raw.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(head, /\r\nconnection: close(\r\n|$)/)
  t.equal(Number(/content-length: (\d+)/.exec(head!)![1]), Buffer.byteLength(body!))
  t.match(JSON.parse(body!), { status: 408, code: 'REQUEST_TIMEOUT' })
})

t.test('the server options enforce the limits, with the timeout checked often enough to matter', async (t) => {
  const o = serverOptions(limits)
  t.match(o, { headersTimeout: 5000, maxHeaderSize: 8192, maxHeadersCount: 4, requireHostHeader: false })
  t.ok(o.connectionsCheckingInterval <= 1000)
})
