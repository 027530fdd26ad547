import { createServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { close, listen, routeFile } from '../helpers/upstreams.ts'

/**
 * Streams that outlive the credential that opened them: a revoked WebSocket whose client ignores the close
 * frame (both legs must close, the upstream must stop getting frames at once), streams opened with an access
 * token that reaches its `exp`, and upgrade requests that are not a GET.
 */

/** A masked client-to-server text frame (RFC 6455 §5.3). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
}

/** A raw WebSocket client that completes the handshake and then ignores everything the server sends. */
function deafClient(port: number, path: string, credential: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the client does not even answer the gateway's FIN; only a destroy ends the connection.
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      socket.write([`GET ${path} HTTP/1.1`, 'Host: test', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Authorization: Bearer ${credential}`].join('\r\n') + '\r\n\r\n')
    })
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())))
    socket.on('error', () => {})
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      // Reads go on (so the socket is not back-pressured) but nothing is ever answered, the close frame included.
      socket.on('data', () => {})
      if (head.startsWith('HTTP/1.1 101')) resolve({ socket, closed })
      else reject(new Error(head))
    }
    socket.on('data', onData)
  })
}

t.test('stream legs', async (t) => {
  // A WebSocket upstream that records every frame it receives and when each of its legs closed.
  const wsUpstream = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ server: wsUpstream })
  const legs: Array<{ messages: Array<{ text: string; at: number }>; closedAt?: number }> = []
  wss.on('connection', (socket) => {
    const leg: (typeof legs)[number] = { messages: [] }
    legs.push(leg)
    socket.send('hello')
    socket.on('message', (m) => leg.messages.push({ text: String(m), at: performance.now() }))
    socket.on('close', () => { leg.closedAt = performance.now() })
  })
  const sse = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write('data: tick\n\n'), 100)
    res.on('close', () => clearInterval(timer))
  })
  const [wsOrigin, sseOrigin] = await Promise.all([listen(wsUpstream), listen(sse)])
  const config = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  ws: { url: "${wsOrigin}" }
  sse: { url: "${sseOrigin}" }
routes:
  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: ws, prefix: /ws, upstream: ws, websockets: true }
  - { name: events, prefix: /events, upstream: sse }
`)
  // Access tokens live 2 s here, so a stream opened with one meets its `exp` within the test.
  const kg = await keygateOnPostgres('adv_stream_legs', { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', KEYGATE_ACCESS_TOKEN_TTL: '2' })
  t.teardown(async () => {
    await kg.close()
    await kg.db.drop()
    wss.close()
    await Promise.all([close(wsUpstream), close(sse)])
  })
  const login = async () => (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string

  await t.test('a revoked WebSocket whose client ignores the close frame: frames stop at once, both legs close within the close timeout', async (t) => {
    const jwt = await login()
    const created = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'deaf' } })).json
    const { socket, closed } = await deafClient(kg.port, '/ws/room', created.api_key)
    while (legs.length === 0) await new Promise((r) => setTimeout(r, 10))
    const leg = legs.at(-1)!
    let n = 0
    const sender = setInterval(() => { if (!socket.destroyed) socket.write(clientFrame(`frame ${n++}`)) }, 10)
    t.teardown(() => clearInterval(sender))
    await new Promise((r) => setTimeout(r, 200))
    t.ok(leg.messages.length > 5, 'frames flow before the revocation')

    const fresh = await login()
    const asked = performance.now()
    const revoked = await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${created.id}`, { token: fresh })
    const revokedAt = performance.now()
    t.equal(revoked.status, 200)
    const clientClosedAt = await closed
    while (leg.closedAt === undefined && performance.now() - revokedAt < 5000) await new Promise((r) => setTimeout(r, 10))
    clearInterval(sender)
    t.ok(leg.closedAt !== undefined, 'the upstream leg closed')
    const late = leg.messages.filter((m) => m.at > revokedAt + 100)
    t.same(late.map((m) => m.text), [], 'no frame reached the upstream later than 100 ms after the revocation answer')
    const both = Math.max(clientClosedAt, leg.closedAt!) - asked
    t.ok(both < 1500, `both legs closed ${(both / 1000).toFixed(2)} s after the revocation (close timeout 1 s)`)
    t.comment(`figure: both WebSocket legs closed ${(both / 1000).toFixed(2)} s after the revocation`)
  })

  await t.test('a WebSocket and an event stream opened with an access token close at its exp', async (t) => {
    const jwt = await login()
    const exp = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).exp * 1000
    const ws = new WebSocket(`${kg.url.replace('http', 'ws')}/ws/room`, { headers: { authorization: `Bearer ${jwt}` } })
    const wsClosed = new Promise<number>((r) => ws.once('close', () => r(Date.now())))
    await new Promise((r) => ws.once('open', r))
    const events = await fetch(`${kg.url}/events`, { headers: { authorization: `Bearer ${jwt}` } })
    t.equal(events.status, 200)
    const reader = events.body!.getReader()
    await reader.read()
    const sseEnded = (async () => {
      try {
        while (!(await reader.read()).done);
      } catch {
        // cut: the same end
      }
      return Date.now()
    })()
    const [wsAt, sseAt] = await Promise.all([wsClosed, sseEnded])
    for (const [what, at] of [['the WebSocket', wsAt], ['the event stream', sseAt]] as const) {
      t.ok(at >= exp - 50 && at < exp + 1500, `${what} ended ${at - exp} ms after the token's exp`)
    }
    t.equal((await fetch(`${kg.url}/events`, { headers: { authorization: `Bearer ${jwt}` } })).status, 401, 'the token is refused from then on')
  })

  await t.test('an upgrade request that is not a GET is answered 400 WEBSOCKET_METHOD_INVALID and logged with its method', async (t) => {
    const jwt = await login()
    const before = legs.length
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const head = [`${method} /ws/room HTTP/1.1`, 'Host: test', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Authorization: Bearer ${jwt}`, 'Content-Length: 0']
      const { response, timedOut } = await rawExchange(kg.port, head.join('\r\n') + '\r\n\r\n', 5000)
      t.notOk(timedOut, `${method}: answered`)
      t.same(statusAndCode(response), { status: 400, code: 'WEBSOCKET_METHOD_INVALID' }, `${method}: 400 WEBSOCKET_METHOD_INVALID`)
      const line = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).reverse().find((l) => l.msg === 'request' && l.upgrade === 'websocket')
      t.match(line, { method, status: 400, code: 'WEBSOCKET_METHOD_INVALID' }, `${method}: the access line names the method and the refusal`)
    }
    t.equal(legs.length, before, 'nothing reached the upstream')
  })
})
