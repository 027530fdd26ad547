import { createHash, randomBytes } from 'node:crypto'
import { createServer, request } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { close, echoServer, listen, routeFile } from '../helpers/upstreams.ts'

/** A WebSocket whose messages queue up until read, so none is lost between `open` and the first read. */
type Socket = WebSocket & { next(): Promise<string> }

function queued(ws: WebSocket): Socket {
  const messages: string[] = []
  const waiting: Array<(m: string) => void> = []
  ws.on('message', (m) => {
    const text = String(m)
    const w = waiting.shift()
    if (w) w(text)
    else messages.push(text)
  })
  return Object.assign(ws, { next: () => (messages.length ? Promise.resolve(messages.shift()!) : new Promise<string>((r) => waiting.push(r))) })
}

/** Opens a WebSocket through the gateway; resolves once open, or with the HTTP status that refused it. */
function openSocket(url: string, token?: string): Promise<{ ws?: Socket; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = queued(new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }))
    ws.once('open', () => resolve({ ws }))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    ws.once('error', () => resolve({}))
  })
}

const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

t.test('streaming through the gateway', async (t) => {
  // A WebSocket upstream that greets with the identity it was given, then echoes.
  const wsUpstream = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ server: wsUpstream })
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ identity: req.headers['x-keygate-identity'] ?? null, authorization: req.headers.authorization ?? null, url: req.url }))
    socket.on('message', (m) => socket.send(`echo:${m}`))
  })
  // An upstream that refuses every upgrade with a plain 403.
  const refusing = createServer((_req, res) => res.writeHead(403).end('no'))
  refusing.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno'))
  // An upstream that thinks for 1.2 s before it answers.
  const thinking = createServer((_req, res) => setTimeout(() => res.end('thought'), 1200))
  // An SSE upstream that writes an event every 100 ms for 10 s.
  const sse = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    let n = 0
    const timer = setInterval(() => {
      res.write(`data: ${n++}\n\n`)
      if (n === 100) { clearInterval(timer); res.end() }
    }, 100)
    res.on('close', () => {
      clearInterval(timer)
      if (n < 100) sseCut.push(n)
    })
  })
  const sseCut: number[] = []
  // A download of 24 MiB with its Content-Length, written as fast as the gateway takes it.
  const bulkData = randomBytes(24 * 1024 * 1024)
  const bulk = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bulkData.length, 'set-cookie': ['a=1', 'b=2'] })
    res.end(bulkData)
  })
  // A download without end (up to 1 GiB), written as fast as the gateway takes it: more than the kernel's socket
  // buffers on both legs hold, so a client that stops reading holds the gateway back.
  let endlessCut = 0
  const chunk = randomBytes(1024 * 1024)
  const endless = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    let sent = 0
    const more = () => {
      while (sent < 1024 && !res.destroyed) {
        sent++
        if (!res.write(chunk)) return void res.once('drain', more)
      }
      res.end()
    }
    more()
    res.on('close', () => { if (!res.writableFinished) endlessCut++ })
  })
  const echo = await echoServer()
  const [wsOrigin, refusingOrigin, sseOrigin, thinkingOrigin, bulkOrigin, endlessOrigin] = await Promise.all([listen(wsUpstream), listen(refusing), listen(sse), listen(thinking), listen(bulk), listen(endless)])
  const config = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  documents: { url: "internal:demo-documents" }
  conversations: { url: "internal:demo-conversations" }
  ws: { url: "${wsOrigin}" }
  refusing: { url: "${refusingOrigin}" }
  sse: { url: "${sseOrigin}" }
  echo: { url: "${echo.origin}" }
  thinking: { url: "${thinkingOrigin}" }
  bulk: { url: "${bulkOrigin}" }
  endless: { url: "${endlessOrigin}" }
routes:
  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: documents, prefix: /api/v1/documents, upstream: documents, max_body_bytes: 8000000 }
  - { name: small, prefix: /small, upstream: documents, rewrite_prefix: /api/v1/documents, max_body_bytes: 1000000 }
  - { name: conversations, prefix: /api/v1/conversations, upstream: conversations }
  - { name: ws, prefix: /ws, upstream: ws, websockets: true, strip_prefix: true }
  - { name: no-ws, prefix: /plain, upstream: ws }
  - { name: refusing, prefix: /refusing, upstream: refusing, websockets: true }
  - { name: sse, prefix: /events, upstream: sse }
  - { name: slow-body, prefix: /slow-body, upstream: echo, idle_timeout_ms: 300 }
  - { name: thinking, prefix: /thinking, upstream: thinking, idle_timeout_ms: 300, timeout_ms: 5000 }
  - { name: bulk, prefix: /bulk, upstream: bulk }
  - { name: stalled-reader, prefix: /stalled, upstream: endless, idle_timeout_ms: 400 }
`)
  const kg = await keygateOnPostgres('streaming', { KEYGATE_CONFIG: config, KEYGATE_MAX_KEYS_PER_USER: '10' })
  t.teardown(async () => {
    await kg.close()
    await kg.db.drop()
    wss.close()
    await Promise.all([close(wsUpstream), close(refusing), close(sse), close(thinking), close(bulk), close(endless), echo.close()])
  })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const newKey = async (name: string) => (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name } })).json
  const wsUrl = kg.url.replace('http', 'ws')

  await t.test('server-sent events reach the client as the upstream writes them', async (t) => {
    const res = await fetch(`${kg.url}/api/v1/conversations/c1/streaming`, { headers: { authorization: `Bearer ${jwt}` } })
    t.equal(res.headers.get('content-type'), 'text/event-stream')
    const started = performance.now()
    const reader = res.body!.getReader()
    const first = await reader.read()
    const firstAt = performance.now() - started
    t.match(new TextDecoder().decode(first.value), /^id: 1\nevent: message\ndata: /, 'the first event arrives whole')
    let rest = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      rest += new TextDecoder().decode(value)
    }
    const endAt = performance.now() - started
    t.ok(endAt - firstAt > 500, `the first event came ${firstAt.toFixed(0)} ms in, long before the end at ${endAt.toFixed(0)} ms`)
    t.equal((rest.match(/^id: /gm) ?? []).length, 4, 'then the other four')
  })

  await t.test('a WebSocket is authenticated at the handshake and the upstream sees the identity, never the credential', async (t) => {
    const key = (await newKey('ws')).api_key
    const { ws } = await openSocket(`${wsUrl}/ws/room?x=1`, key)
    t.ok(ws, 'the socket opens')
    const hello = JSON.parse(await ws!.next())
    t.match(hello.identity, /^eyJ/, 'the upstream got a signed identity')
    t.equal(hello.authorization, null, 'and not the API key')
    t.equal(hello.url, '/room?x=1', 'with the prefix stripped')
    ws!.send('ping')
    t.equal(await ws!.next(), 'echo:ping', 'messages flow both ways')
    ws!.close()
  })

  await t.test('handshakes are refused with the usual codes', async (t) => {
    const none = await openSocket(`${wsUrl}/ws/room`)
    t.equal(none.status, 401)
    t.match(none.body, /"code":"AUTH_REQUIRED"/)
    const bad = await openSocket(`${wsUrl}/ws/room`, 'sk_live_bogus')
    t.equal(bad.status, 401)
    const notAllowed = await openSocket(`${wsUrl}/plain`, jwt)
    t.equal(notAllowed.status, 400)
    t.match(notAllowed.body, /"code":"WEBSOCKET_NOT_ALLOWED"/)
    const refused = await openSocket(`${wsUrl}/refusing`, jwt)
    t.equal(refused.status, 403, 'an upstream that refuses the upgrade has its answer relayed, and no tunnel opens')
    const cacheControl = await new Promise<string | undefined>((resolve, reject) => {
      request(`${kg.url}/ws/room`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } }, (res) => {
        res.resume()
        resolve(res.headers['cache-control'])
      }).on('error', reject).end()
    })
    t.equal(cacheControl, 'no-store', 'a refused handshake is not cached')
  })

  await t.test('every handshake gets one access line: 101 when it went upstream, the code when refused', async (t) => {
    const key = await newKey('logged')
    const { ws } = await openSocket(`${wsUrl}/ws/room`, key.api_key)
    ws!.close()
    await openSocket(`${wsUrl}/ws/room`)
    const lines = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.upgrade === 'websocket' && l.route === 'ws')
    const opened = lines.find((l) => l.status === 101 && l.key_id === key.id)
    t.ok(opened, 'the handshake that opened is logged with 101 and its key id')
    t.equal(opened?.auth, 'api_key')
    t.ok(lines.some((l) => l.status === 401 && l.code === 'AUTH_REQUIRED'), 'the refused one with its status and code')
    t.notOk(kg.logs.some((l) => l.includes(key.api_key)), 'no line holds the key')
  })

  await t.test('an open WebSocket and an SSE stream close when their key is revoked', async (t) => {
    const { id, api_key: key } = await newKey('revoke-me')
    const { ws } = await openSocket(`${wsUrl}/ws/room`, key)
    t.ok(ws)
    const events = await fetch(`${kg.url}/events`, { headers: { authorization: `Bearer ${key}` } })
    const reader = events.body!.getReader()
    await reader.read()
    const wsClosed = closed(ws!)
    const revokedAt = performance.now()
    t.equal((await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${id}`, { token: jwt })).status, 200)
    t.equal(await wsClosed, 1008, 'the WebSocket gets a policy-violation close')
    let sseEnded = false
    try {
      for (;;) {
        const { done } = await reader.read()
        if (done) break
      }
      sseEnded = true
    } catch {
      sseEnded = true
    }
    const after = performance.now() - revokedAt
    t.ok(sseEnded, 'the event stream ends')
    t.ok(after < 2000, `both within ${after.toFixed(0)} ms of the revocation, long before the stream would have ended`)
  })

  await t.test('a rolled key keeps its streams during the grace period', async (t) => {
    const { id, api_key: key } = await newKey('rolling')
    const { ws } = await openSocket(`${wsUrl}/ws/room`, key)
    await ws!.next()
    t.equal((await call(kg.url, 'POST', `/api/v1/auth/api-keys/${id}/roll`, { token: jwt, body: { grace_period_seconds: 600 } })).status, 200)
    await new Promise((r) => setTimeout(r, 300))
    ws!.send('still here')
    t.equal(await ws!.next(), 'echo:still here', 'the socket is still open')
    ws!.close()
  })

  await t.test('a rolled key\'s streams close when its grace period ends, its successor\'s stay open', async (t) => {
    const { id, api_key: key } = await newKey('rolled-short')
    const { ws } = await openSocket(`${wsUrl}/ws/room`, key)
    await ws!.next()
    const events = await fetch(`${kg.url}/events`, { headers: { authorization: `Bearer ${key}` } })
    const reader = events.body!.getReader()
    await reader.read()
    const rolled = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${id}/roll`, { token: jwt, body: { grace_period_seconds: 1 } })
    t.equal(rolled.status, 200)
    const successor = await openSocket(`${wsUrl}/ws/room`, rolled.json.api_key)
    await successor.ws!.next()
    const rolledAt = performance.now()
    const wsClosed = closed(ws!)
    ws!.send('during the grace period')
    t.equal(await ws!.next(), 'echo:during the grace period', 'the old key\'s socket works during the grace period')
    t.equal(await wsClosed, 1008, 'then gets a policy-violation close')
    let sseEnded = false
    try {
      for (;;) if ((await reader.read()).done) break
      sseEnded = true
    } catch {
      sseEnded = true
    }
    const after = performance.now() - rolledAt
    t.ok(sseEnded, 'the event stream ends too')
    t.ok(after > 700 && after < 3000, `both about when the 1 s grace period ended (${after.toFixed(0)} ms)`)
    successor.ws!.send('still here')
    t.equal(await successor.ws!.next(), 'echo:still here', 'the successor\'s socket stays open')
    successor.ws!.close()
    const metrics = await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text())
    t.match(metrics, /keygate_streams_closed_total\{reason="expired"\} [1-9]/)
  })

  await t.test('uploads stream intact, chunked or not, and bodies over the route limit are refused', async (t) => {
    const data = randomBytes(5 * 1024 * 1024 + 3)
    const digest = createHash('sha256').update(data).digest('hex')
    const chunked = await fetch(`${kg.url}/api/v1/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(Readable.from((function* () { for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536) })())) as ReadableStream,
      duplex: 'half',
    } as RequestInit)
    const got = (await chunked.json()) as { bytes: number; sha256: string }
    t.equal(chunked.status, 201)
    t.same(got, { ...got, bytes: data.length, sha256: digest }, 'a chunked upload arrives byte for byte')

    const declared = await new Promise<{ status: number; code: string }>((resolve) => {
      const req = request(`${kg.url}/small`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-length': String(2_000_000) } }, (res) => {
        let body = ''
        res.on('data', (d) => { body += d })
        res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(body).code }))
      })
      req.on('error', () => {})
      req.write(Buffer.alloc(1000))
    })
    t.same(declared, { status: 413, code: 'BODY_TOO_LARGE' }, 'a declared size over the limit is refused before the body is sent')

    const streamed = await fetch(`${kg.url}/small`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}` },
      body: Readable.toWeb(Readable.from((function* () { for (let i = 0; i < 40; i++) yield Buffer.alloc(65536) })())) as ReadableStream,
      duplex: 'half',
    } as RequestInit).then(async (r) => ({ status: r.status, code: ((await r.json()) as { code: string }).code }), () => ({ status: 0, code: 'connection cut' }))
    t.ok(streamed.status === 413 || streamed.status === 0, `a chunked body over the limit is cut (${streamed.status} ${streamed.code})`)
    if (streamed.status === 413) t.equal(streamed.code, 'BODY_TOO_LARGE')
  })

  await t.test('a body that stalls longer than the route\'s idle timeout is cut', async (t) => {
    const started = performance.now()
    const ended = await new Promise<number>((resolve) => {
      const socket = connect(kg.port, '127.0.0.1', () => {
        socket.write(`POST /slow-body HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${jwt}\r\nContent-Length: 100\r\n\r\nabc`)
      })
      socket.on('data', () => {})
      socket.on('close', () => resolve(performance.now() - started))
      socket.on('error', () => {})
    })
    t.ok(ended >= 250 && ended < 5000, `closed after ${ended.toFixed(0)} ms (idle timeout 300 ms)`)
  })

  await t.test('the wait for response headers is bounded by timeout_ms, not by the shorter idle timeout', async (t) => {
    for (const body of [undefined, 'a small body']) {
      const res = await fetch(`${kg.url}/thinking`, { method: body ? 'POST' : 'GET', body, headers: { authorization: `Bearer ${jwt}` } })
      t.equal(res.status, 200, `an upstream answering after 1.2 s is waited for (idle timeout 300 ms, ${body ? 'with' : 'without'} a body)`)
      t.equal(await res.text(), 'thought')
    }
  })

  await t.test('a download reaches a slow client intact, its headers relayed, at the pace the client reads', async (t) => {
    const got = await new Promise<{ status: number; cookies: string[] | undefined; length: string | undefined; bytes: number; sha256: string; pauses: number }>((resolve, reject) => {
      const req = request(`${kg.url}/bulk`, { headers: { authorization: `Bearer ${jwt}` } }, (res) => {
        const hash = createHash('sha256')
        let bytes = 0
        let pauses = 0
        // Reads in bursts with pauses, so the gateway has to hold the upstream back instead of buffering 24 MiB.
        res.on('data', (d: Buffer) => {
          hash.update(d)
          bytes += d.length
          if (bytes > (pauses + 1) * 4 * 1024 * 1024) {
            pauses++
            res.pause()
            setTimeout(() => res.resume(), 50)
          }
        })
        res.on('end', () => resolve({ status: res.statusCode!, cookies: res.headers['set-cookie'], length: res.headers['content-length'], bytes, sha256: hash.digest('hex'), pauses }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
    t.equal(got.status, 200)
    t.same(got.cookies, ['a=1', 'b=2'], 'repeated headers are relayed one by one')
    t.equal(got.length, String(bulkData.length), 'the length is relayed')
    t.equal(got.bytes, bulkData.length)
    t.equal(got.sha256, createHash('sha256').update(bulkData).digest('hex'), 'byte for byte')
    t.ok(got.pauses >= 5, 'the client paused along the way')
  })

  await t.test('a client that stops reading in the middle of a download is cut after the route\'s idle timeout, and the upstream exchange with it', async (t) => {
    const before = endlessCut
    const client = connect(kg.port, '127.0.0.1')
    let bytes = 0
    let pausedAt = 0
    const closed = new Promise<void>((resolve, reject) => {
      client.on('close', () => resolve())
      client.on('error', reject)
    })
    let heads = ''
    client.on('data', (d: Buffer) => {
      bytes += d.length
      if (pausedAt) return
      // The answer to a first request, then the download's head and a little of its body, then nothing more: the
      // kernel's buffers fill, then the gateway's. (The download is the connection's second exchange: a kept-alive
      // connection is what a client that means harm reuses.)
      heads += d.toString('latin1', 0, Math.min(d.length, 4096))
      if (heads.split('HTTP/1.1 200').length > 2) {
        pausedAt = performance.now()
        client.pause()
      }
    })
    const head = (path: string) => `GET ${path} HTTP/1.1\r\nHost: keygate.test\r\nAuthorization: Bearer ${jwt}\r\n\r\n`
    client.write(head('/api/v1/auth/me') + head('/stalled'))
    while (endlessCut === before && (!pausedAt || performance.now() - pausedAt < 10_000)) await new Promise((r) => setTimeout(r, 20))
    const cutAfterMs = performance.now() - pausedAt
    t.equal(endlessCut, before + 1, `the upstream's response was closed unfinished ${cutAfterMs.toFixed(0)} ms after the client stopped reading`)
    t.ok(cutAfterMs >= 400, 'not before idle_timeout_ms (400 ms; the socket buffers fill first)')
    // A paused client sees nothing of it: reading again, it gets what was buffered, then the end of the connection.
    client.resume()
    await closed
    t.pass(`the gateway closed the client's connection (${bytes} bytes had reached it)`)
    const line = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.route === 'stalled-reader').at(-1)
    t.match(line, { status: 200, auth: 'jwt' }, 'the cut exchange is logged with the status that was sent')
    t.ok((line?.bytes_out as number) < 1024 * 1024 * 1024, `with the bytes that were sent (${line?.bytes_out})`)
  })

  await t.test('a client that leaves in the middle of a response stops the upstream exchange, and the gateway keeps serving', async (t) => {
    const before = sseCut.length
    const res = await fetch(`${kg.url}/events`, { headers: { authorization: `Bearer ${jwt}` } })
    const reader = res.body!.getReader()
    await reader.read()
    const left = performance.now()
    await reader.cancel()
    while (sseCut.length === before && performance.now() - left < 3000) await new Promise((r) => setTimeout(r, 20))
    t.equal(sseCut.length, before + 1, `the upstream's response was closed ${(performance.now() - left).toFixed(0)} ms after the client left, long before its end`)
    const after = await call(kg.url, 'GET', '/api/v1/conversations', { token: jwt })
    t.equal(after.status, 200, 'the next request is served')
    const line = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.route === 'sse').at(-1)
    t.match(line, { status: 200, auth: 'jwt' }, 'the cut exchange is logged with the status that was sent')
  })
})
