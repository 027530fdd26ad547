import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { isReservedHeader, sanitizeRequestHeaders, sanitizeResponseHeaders } from '../../../gateway/stage-sanitize.ts'

const IDENTITY = 'x-keygate-identity'

function request(raw: Array<[string, string]>): IncomingMessage {
  const headers: Record<string, string> = {}
  for (const [name, value] of raw) {
    const n = name.toLowerCase()
    headers[n] = headers[n] === undefined ? value : `${headers[n]}, ${value}`
  }
  return { headers, rawHeaders: raw.flat() } as unknown as IncomingMessage
}

/** The forwarded names, in order. */
function names(raw: Array<[string, string]>, forwardAuthorization = false): string[] {
  return sanitizeRequestHeaders(request(raw), { identityHeader: IDENTITY, forwardAuthorization }).filter((_, i) => i % 2 === 0)
}

t.test('reserved identity and forwarding headers are removed in every spelling', async (t) => {
  const spellings = [
    'X-Keygate-Identity', 'x_keygate_identity', 'X_KEYGATE_IDENTITY', 'x-keygate-anything',
    'x-user-id', 'X_User_Id', 'X-USER-ID', 'x-username', 'x-auth-method', 'X_Api_Key_Id', 'x-request-id',
    'x-forwarded-for', 'X_Forwarded_For', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'Forwarded', 'x-real-ip', 'X_Real_IP',
  ]
  t.same(names(spellings.map((n) => [n, 'forged'])), [])
  for (const n of spellings) t.equal(isReservedHeader(n, IDENTITY), true, n)
})

t.test('method override headers are removed, so the upstream acts on the method the route admitted', async (t) => {
  const spellings = ['X-HTTP-Method-Override', 'x_http_method_override', 'X-Http-Method', 'x-method-override', 'X_METHOD_OVERRIDE']
  t.same(names(spellings.map((n) => [n, 'DELETE'])), [])
  t.equal(isReservedHeader('x-http-methods', IDENTITY), false, 'a header that only starts the same way stays')
})

t.test('a custom identity header name is reserved too', async (t) => {
  t.equal(isReservedHeader('My_Identity', 'my-identity'), true)
  t.same(sanitizeRequestHeaders(request([['My-Identity', 'forged'], ['accept', '*/*']]), { identityHeader: 'my-identity', forwardAuthorization: false }), ['accept', '*/*'])
})

t.test('duplicated reserved headers are all removed', async (t) => {
  t.same(names([['X-Keygate-Identity', 'a'], ['x-keygate-identity', 'b'], ['X_KEYGATE_IDENTITY', 'c'], ['x-user-id', '1'], ['x-user-id', '2']]), [])
})

t.test('hop-by-hop headers are removed', async (t) => {
  const hop: Array<[string, string]> = [
    ['Connection', 'keep-alive'], ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'], ['Transfer-Encoding', 'chunked'],
    ['TE', 'trailers'], ['Trailer', 'x'], ['Upgrade', 'websocket'], ['Proxy-Authorization', 'Basic x'], ['Host', 'example.com'],
    ['Expect', '100-continue'], ['HTTP2-Settings', 'AAA'],
  ]
  t.same(names([...hop, ['accept', '*/*']]), ['accept'])
})

t.test('headers named in Connection are removed', async (t) => {
  const raw: Array<[string, string]> = [['Connection', 'X-Internal-Hop, x-other'], ['X-Internal-Hop', '1'], ['X-Other', '2'], ['X-Kept', '3']]
  t.same(names(raw), ['x-kept'])
})

t.test('authorization is removed unless the route forwards it', async (t) => {
  const raw: Array<[string, string]> = [['Authorization', 'Bearer sk_live_x'], ['Accept', 'application/json']]
  t.same(sanitizeRequestHeaders(request(raw), { identityHeader: IDENTITY, forwardAuthorization: false }), ['accept', 'application/json'])
  t.same(sanitizeRequestHeaders(request(raw), { identityHeader: IDENTITY, forwardAuthorization: true }), ['authorization', 'Bearer sk_live_x', 'accept', 'application/json'])
})

t.test('ordinary headers are kept with their values, order and duplicates', async (t) => {
  const raw: Array<[string, string]> = [['Accept', 'text/html'], ['Cookie', 'a=1'], ['X-Custom', 'v'], ['Cookie', 'b=2'], ['Content-Type', 'application/json']]
  t.same(sanitizeRequestHeaders(request(raw), { identityHeader: IDENTITY, forwardAuthorization: false }), [
    'accept', 'text/html', 'cookie', 'a=1', 'x-custom', 'v', 'cookie', 'b=2', 'content-type', 'application/json',
  ])
})

t.test('ordinary headers that only resemble reserved ones are kept', async (t) => {
  t.same(names([['X-User', 'a'], ['X-Keygate', 'b'], ['X-Forwarded', 'c'], ['User-Id', 'd']]), ['x-user', 'x-keygate', 'x-forwarded', 'user-id'])
})

t.test('response hop-by-hop headers and those named in Connection are removed, the rest kept in order', async (t) => {
  const raw = [
    'Connection', 'close, X-Hop',
    'Keep-Alive', 'timeout=5',
    'Transfer-Encoding', 'chunked',
    'X-Hop', '1',
    'Content-Type', 'application/json',
    'Set-Cookie', 'a=1',
    'Set-Cookie', 'b=2',
  ].map((v, i) => (i % 4 === 0 ? Buffer.from(v, 'latin1') : v))
  t.same(sanitizeResponseHeaders(raw), { headers: ['content-type', 'application/json', 'set-cookie', 'a=1', 'set-cookie', 'b=2'], eventStream: false })
})

t.test('a text/event-stream response is recognised, and header values keep their latin1 bytes', async (t) => {
  const out = sanitizeResponseHeaders([Buffer.from('content-type'), Buffer.from('text/event-stream; charset=utf-8'), Buffer.from('x-name'), Buffer.from([0x63, 0x61, 0x66, 0xe9])])
  t.same(out, { headers: ['content-type', 'text/event-stream; charset=utf-8', 'x-name', 'caf\u00e9'], eventStream: true })
})

t.test('a response header named in Connection is dropped wherever it stands, in any spelling, and no longer marks an event stream', async (t) => {
  const raw = ['Content-Type', 'text/event-stream', 'X-Trace', 'a', 'CONNECTION', 'Content-TYPE , x-trace', 'Cache-Control', 'no-cache']
  t.same(sanitizeResponseHeaders(raw), { headers: ['cache-control', 'no-cache'], eventStream: false })
  // The same spellings again (their verdicts now remembered) without the Connection header: all kept.
  t.same(sanitizeResponseHeaders(['Content-Type', 'text/event-stream', 'X-Trace', 'a']), { headers: ['content-type', 'text/event-stream', 'x-trace', 'a'], eventStream: true })
})

t.test('response header names are recognised the same whether seen before at their position or not', async (t) => {
  const answer = (...names: string[]) => names.flatMap((n) => [Buffer.from(n), Buffer.from('v')])
  const first = answer('Content-Type', 'Connection', 'X-A')
  t.same(sanitizeResponseHeaders(first).headers, ['content-type', 'v', 'x-a', 'v'])
  t.same(sanitizeResponseHeaders(answer('Content-Type', 'Connection', 'X-A')).headers, ['content-type', 'v', 'x-a', 'v'], 'the same names again')
  t.same(sanitizeResponseHeaders(answer('Keep-Alive', 'X-B', 'Transfer-Encoding')).headers, ['x-b', 'v'], 'other names at the same positions: hop-by-hop ones still dropped')
  // A buffer the caller reuses after the call (undici's memory) does not change what a position holds.
  const reused = answer('X-C', 'X-D')
  sanitizeResponseHeaders(reused)
  reused[0]!.write('TE\u0000', 'latin1')
  t.same(sanitizeResponseHeaders(answer('X-C', 'X-D')).headers, ['x-c', 'v', 'x-d', 'v'])
  t.same(sanitizeResponseHeaders(answer('TE', 'X-D')).headers, ['x-d', 'v'], 'and a hop-by-hop name of the length of the old one is still dropped')
})
