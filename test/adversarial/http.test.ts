import { connect } from 'node:net'
import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { leakedSecrets, rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * HTTP/1.1 framing attacks: request smuggling (Content-Length against Transfer-Encoding), headers too large,
 * too many or too slow, bodies too large or too slow. Each ends in its documented status and code, with the
 * connection closed and nothing forwarded.
 */
const req = (lines: string[], body = '') => lines.join('\r\n') + '\r\n\r\n' + body
const SMUGGLED = 'GET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'

/** Raw request bytes → the status and code they must end in; nothing may reach the upstream. */
const FRAMING: Array<[string, string, number, string, streamed?: 'streamed']> = [
  ['Content-Length with Transfer-Encoding (CL.TE)', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n' + SMUGGLED), 400, 'REQUEST_MALFORMED'],
  ['Transfer-Encoding with Content-Length (TE.CL)', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Content-Length: 3'], '8\r\nSMUGGLED\r\n0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['two different Content-Lengths', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Content-Length: 6'], 'hello!'), 400, 'REQUEST_MALFORMED'],
  ['two equal Content-Lengths', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Content-Length: 5'], 'hello'), 400, 'REQUEST_MALFORMED'],
  ['a Content-Length list', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 5, 5'], 'hello'), 400, 'REQUEST_MALFORMED'],
  ['a signed Content-Length', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: +5'], 'hello'), 400, 'REQUEST_MALFORMED'],
  ['a negative Content-Length', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: -1'], 'hello'), 400, 'REQUEST_MALFORMED'],
  ['a hexadecimal Content-Length', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 0x5'], 'hello'), 400, 'REQUEST_MALFORMED'],
  ['an obfuscated Transfer-Encoding', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: xchunked'], '0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['Transfer-Encoding not ending in chunked', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked, identity'], '0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['whitespace before the colon', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding : chunked'], '0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['Transfer-Encoding twice', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['Transfer-Encoding folded onto the previous line', req(['POST /public HTTP/1.1', 'Host: x', 'X-A: 1', ' Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['a chunk size that is not hexadecimal', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n'), 400, 'REQUEST_MALFORMED'],
  ['a chunk longer than its size', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], '2\r\nhello\r\n0\r\n\r\n'), 400, 'REQUEST_MALFORMED', 'streamed'],
  ['bare LF line ends', 'GET /public HTTP/1.1\nHost: x\n\n', 400, 'REQUEST_MALFORMED'],
  ['a NUL byte in a header value', req(['GET /public HTTP/1.1', 'Host: x', 'X-A: a\u0000b']), 400, 'REQUEST_MALFORMED'],
  ['a control character in a header name', req(['GET /public HTTP/1.1', 'Host: x', 'X-\u0001A: b']), 400, 'REQUEST_MALFORMED'],
  ['no Host header', req(['GET /public HTTP/1.1']), 400, 'REQUEST_MALFORMED'],
  ['two Host headers', req(['GET /public HTTP/1.1', 'Host: a', 'Host: b']), 400, 'REQUEST_MALFORMED'],
  ['an HTTP/0.9 request line', 'GET /public\r\n\r\n', 400, 'REQUEST_MALFORMED'],
  ['an unknown HTTP version', req(['GET /public HTTP/1.7', 'Host: x']), 400, 'REQUEST_MALFORMED'],
  ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400, 'REQUEST_MALFORMED'],
  ['a space in the request target', req(['GET /pub lic HTTP/1.1', 'Host: x']), 400, 'REQUEST_MALFORMED'],
  ['an unknown method', req(['FOO /public HTTP/1.1', 'Host: x']), 400, 'REQUEST_MALFORMED'],
  ['a header line without a colon', req(['GET /public HTTP/1.1', 'Host: x', 'Transfer-Encoding chunked']), 400, 'REQUEST_MALFORMED'],
  ['one header over the size limit', req(['GET /public HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`]), 431, 'HEADERS_TOO_LARGE'],
  ['a 1 MB Authorization header', req(['GET /echo HTTP/1.1', 'Host: x', `Authorization: Bearer ${'a'.repeat(1 << 20)}`]), 431, 'HEADERS_TOO_LARGE'],
  ['a request target over the size limit', req([`GET /public/${'a'.repeat(20_000)} HTTP/1.1`, 'Host: x']), 431, 'HEADERS_TOO_LARGE'],
  ['more header fields than allowed', req(['GET /public HTTP/1.1', 'Host: x', ...Array.from({ length: 120 }, (_, i) => `X-H${i}: v`)]), 431, 'HEADERS_TOO_LARGE'],
  ['a declared body over the route limit', req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 99999999']), 413, 'BODY_TOO_LARGE'],
  ['a chunked body over the route limit', req(['POST /public HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], `800\r\n${'a'.repeat(2048)}\r\n800\r\n${'a'.repeat(2048)}\r\n`), 413, 'BODY_TOO_LARGE'],
]

t.test('HTTP framing attacks', async (t) => {
  const { echo, kg } = await echoGateway(t, 'http_attacks', { routes: `
    - { name: echo, prefix: /echo, upstream: echo, max_body_bytes: 1024, idle_timeout_ms: 300 }
    - { name: public, prefix: /public, upstream: echo, auth: public, max_body_bytes: 1024, idle_timeout_ms: 300 }
  `, env: { KEYGATE_HEADERS_TIMEOUT_MS: '600' } })
  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: login.json.access_token, body: { name: 'http' } })).json.api_key

  await t.test('every malformed, oversized or smuggling request ends in its code, closed, with nothing forwarded', async (t) => {
    for (const [label, bytes, status, code, streamed] of FRAMING) {
      echo.seen.length = 0
      const { response, timedOut } = await rawExchange(kg.port, bytes, 5000)
      t.same(statusAndCode(response), { status, code }, `${label}: ${status} ${code}`)
      t.notOk(timedOut, `${label}: the gateway closes the connection`)
      t.match(response, /\r\ncontent-type: application\/problem\+json\r\n/i, `${label}: a problem body`)
      // A chunk that breaks its framing is found as the body streams, after the headers went upstream: the
      // exchange is aborted there (the upstream never sees the request end), and nothing follows it.
      if (streamed) t.ok(echo.seen.every((s) => s.url === '/public'), `${label}: only the aborted request reaches the upstream`)
      else t.equal(echo.seen.length, 0, `${label}: nothing reaches the upstream`)
      t.equal((response.match(/^HTTP\/1\.1 /gm) ?? []).length, 1, `${label}: exactly one response (no smuggled second request)`)
    }
  })

  await t.test('the limits leave room for ordinary requests: 100 header fields and a 10 kB header pass', async (t) => {
    echo.seen.length = 0
    const ok = await rawExchange(kg.port, req(['GET /public HTTP/1.1', 'Host: x', ...Array.from({ length: 97 }, (_, i) => `X-H${i}: v`), `X-Big: ${'a'.repeat(10_000)}`, 'Connection: close']))
    t.equal(statusAndCode(ok.response).status, 200)
    t.equal(echo.seen.length, 1)
    const http10 = await rawExchange(kg.port, 'GET /public HTTP/1.0\r\n\r\n')
    t.equal(statusAndCode(http10.response).status, 200, 'HTTP/1.0 needs no Host')
  })

  await t.test('a body over the limit is refused before it is sent', async (t) => {
    // Only the headers go out; the 413 arrives while the client still holds the 100 MB it declared.
    const { response, timedOut } = await rawExchange(kg.port, req(['POST /public HTTP/1.1', 'Host: x', 'Content-Length: 104857600']), 3000)
    t.same(statusAndCode(response), { status: 413, code: 'BODY_TOO_LARGE' })
    t.notOk(timedOut, 'and the connection is closed instead of waiting for the body')
  })

  await t.test('a refused request with a body the client is still sending closes the connection instead of reading it', async (t) => {
    echo.seen.length = 0
    const { response, timedOut } = await rawExchange(kg.port, req(['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 1000000']), 3000)
    t.same(statusAndCode(response), { status: 401, code: 'AUTH_REQUIRED' })
    t.match(response, /\r\nconnection: close\r\n/i)
    t.notOk(timedOut)
    t.equal(echo.seen.length, 0)
  })

  await t.test('a refused request with a small body keeps its connection: the body is read and dropped', async (t) => {
    // A client still writing its body when the gateway closed could meet a reset before it read the answer.
    const { response, timedOut } = await rawExchange(kg.port, req(['POST /echo HTTP/1.1', 'Host: x', 'Content-Length: 100'], 'a'.repeat(100)), 1000)
    t.same(statusAndCode(response), { status: 401, code: 'AUTH_REQUIRED' })
    t.match(response, /\r\nconnection: keep-alive\r\n/i)
    t.ok(timedOut, 'the connection stays open for the next request')
  })

  await t.test('slow headers are answered 408 and closed after the headers timeout', async (t) => {
    const started = performance.now()
    const { response, timedOut } = await new Promise<{ response: string; timedOut: boolean }>((resolve) => {
      const socket = connect(kg.port, '127.0.0.1', () => socket.write('GET /echo HTTP/1.1\r\nHost: x\r\n'))
      let data = ''
      // One header byte every 100 ms: never finished, never idle long enough for an idle timeout.
      const drip = setInterval(() => socket.write('X-Slow: a\r\n'), 100)
      const guard = setTimeout(() => { clearInterval(drip); socket.destroy(); resolve({ response: data, timedOut: true }) }, 5000)
      socket.on('data', (d) => { data += d.toString() })
      socket.on('error', () => {})
      socket.on('close', () => { clearInterval(drip); clearTimeout(guard); resolve({ response: data, timedOut: false }) })
    })
    const elapsed = performance.now() - started
    t.same(statusAndCode(response), { status: 408, code: 'REQUEST_TIMEOUT' })
    t.notOk(timedOut)
    t.ok(elapsed >= 500 && elapsed < 3000, `closed after ${Math.round(elapsed)} ms (headers timeout 600 ms, checked every 600 ms)`)
  })

  await t.test('fifty slow-header connections do not keep others from being served, and are all closed', async (t) => {
    const sockets = Array.from({ length: 50 }, () => {
      const s = connect(kg.port, '127.0.0.1', () => s.write('GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: '))
      s.on('error', () => {})
      return s
    })
    const closed = Promise.all(sockets.map((s) => new Promise<string>((r) => {
      let data = ''
      s.on('data', (d) => { data += d.toString() })
      s.once('close', () => r(data))
    })))
    const started = performance.now()
    const res = await call(kg.url, 'GET', '/echo/ok', { token: key })
    t.equal(res.status, 200, 'an ordinary request is served meanwhile')
    const answers = await closed
    t.ok(performance.now() - started < 3000, 'every slow connection was closed by the gateway')
    t.same(new Set(answers.map((a) => statusAndCode(a).code)), new Set(['REQUEST_TIMEOUT']), 'each with 408 REQUEST_TIMEOUT')
  })

  await t.test('a request body that stalls longer than the route idle timeout is cut', async (t) => {
    echo.seen.length = 0
    const started = performance.now()
    const { timedOut } = await rawExchange(kg.port, req(['POST /echo HTTP/1.1', 'Host: x', `Authorization: Bearer ${key}`, 'Content-Length: 100'], 'abc'), 5000)
    const elapsed = performance.now() - started
    t.notOk(timedOut, 'the gateway closes the connection')
    t.ok(elapsed >= 250 && elapsed < 2500, `after ${Math.round(elapsed)} ms (idle timeout 300 ms)`)
    t.equal((await call(kg.url, 'GET', '/echo/after', { token: key })).status, 200, 'and keeps serving')
  })

  await t.test('no refused request leaves a secret in the logs', async (t) => {
    await t.resolves(new Promise((r) => setTimeout(r, 50)))
    t.same(leakedSecrets(kg.logs, [key, login.json.access_token, login.json.refresh_token, BOOTSTRAP.password]), [])
    t.ok(kg.logs.some((l) => l.includes('"msg":"request refused"') && l.includes('"code":"REQUEST_MALFORMED"')), 'refusals before routing are logged with their code')
  })
})
