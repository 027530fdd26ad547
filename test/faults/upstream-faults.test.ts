import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { freePort } from '../helpers/ports.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'
import { echoServer, routeFile } from '../helpers/upstreams.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'

/**
 * Upstreams that fail in every way a TCP peer can, in front of a gateway running as its own OS process (so its
 * file descriptors can be counted). Each fault is a raw `node:net` server: it reads the request head, then
 * misbehaves exactly as written.
 */

/** A raw upstream: `behave` runs once per request head received; every socket is destroyed by `close()`. */
async function rawUpstream(behave: (socket: Socket) => void) {
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      behave(socket)
    }
    socket.on('data', onData)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Connections open right now (the gateway's side of each must be closed once the exchange is over). */
    get open() { return sockets.size },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()) }),
  }
}

const PARTIAL = 'x'.repeat(1000)
const faults = {
  /** Accepts, reads the request, never answers. */
  hang: () => {},
  /** Closes (FIN) before sending a byte. */
  'close-before-any-byte': (s: Socket) => s.end(),
  /** Resets (RST) before sending a byte. */
  'reset-before-any-byte': (s: Socket) => s.resetAndDestroy(),
  'garbage-status-line': (s: Socket) => s.end('HTTP/1.1 OK WHATEVER\r\nContent-Length: 2\r\n\r\nok'),
  'not-http-at-all': (s: Socket) => s.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'),
  'invalid-header': (s: Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header: x\r\n\r\nok'),
  'conflicting-content-length': (s: Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'),
  /** Declares 100000 bytes, sends 1000, then resets. */
  'cut-mid-body-length': (s: Socket) => { s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n${PARTIAL}`, () => setTimeout(() => s.resetAndDestroy(), 20)) },
  /** Chunked: one chunk of 1000 bytes, then a plain close without the last chunk. */
  'cut-mid-body-chunked': (s: Socket) => { s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n${PARTIAL}\r\n`, () => setTimeout(() => s.end(), 20)) },
  /** A Content-Length longer than the body it sends, then a plain close. */
  'short-body': (s: Socket) => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc'),
  /** Headers and part of the body, then silence with the connection open. */
  'stall-mid-body': (s: Socket) => { s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n${PARTIAL}`) },
}
type Fault = keyof typeof faults

/** Writes `bytes` to the gateway and collects everything until it closes the connection (or `timeoutMs`). */
function exchange(port: number, bytes: string, timeoutMs = 10_000): Promise<{ raw: string; ms: number; timedOut: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now()
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    const chunks: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; socket.destroy() }, timeoutMs)
    socket.on('data', (d) => chunks.push(d))
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ raw: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started, timedOut }) })
  })
}

function parse(raw: string) {
  const headEnd = raw.indexOf('\r\n\r\n')
  const head = headEnd < 0 ? raw : raw.slice(0, headEnd)
  const body = headEnd < 0 ? '' : raw.slice(headEnd + 4)
  return {
    status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1] ?? 0),
    /** How many responses began on the connection: a spliced answer shows as a second status line. */
    responses: raw.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0,
    header: (name: string) => new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'im').exec(head)?.[1],
    body,
    code: /"code":"([A-Z_]+)"/.exec(body)?.[1],
  }
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

/** Polls the gateway's descriptor count until two readings 300 ms apart agree (sockets closing settle). */
async function settledFdCount(pid: number, ms = 5000): Promise<number> {
  const end = Date.now() + ms
  let last = fdCount(pid)
  for (;;) {
    await new Promise((r) => setTimeout(r, 300))
    const now = fdCount(pid)
    if (now === last || Date.now() > end) return now
    last = now
  }
}

/**
 * A listener with a backlog of one whose process never accepts: once two connections fill its queue, the kernel
 * drops further SYNs and connecting hangs, as behind a firewall that drops packets. Its own process, since a
 * listener in this one would be accepted by the event loop.
 */
async function blackholeListener() {
  const child = spawn(process.execPath, ['-e', `const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);setTimeout(()=>Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0),50)})`], { stdio: ['ignore', 'pipe', 'ignore'] })
  const port = Number(await new Promise<string>((r) => child.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))))
  await new Promise((r) => setTimeout(r, 200))
  const fillers = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
  for (const f of fillers) f.on('error', () => {})
  await new Promise((r) => setTimeout(r, 100))
  return {
    port,
    close: async () => {
      for (const f of fillers) f.destroy()
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => { child.once('exit', r); child.kill('SIGKILL') })
    },
  }
}

/** Whether a TCP connection to `port` completes within `ms`. */
function connects(port: number, ms = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    const timer = setTimeout(() => { s.destroy(); resolve(false) }, ms)
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true) })
  })
}

t.test('upstream faults through a gateway process', async (t) => {
  const echo = await echoServer()
  const servers = Object.fromEntries(await Promise.all(Object.entries(faults).map(async ([name, behave]) => [name, await rawUpstream(behave)] as const))) as Record<Fault, Awaited<ReturnType<typeof rawUpstream>>>
  const refusedPort = await freePort()
  const blackhole = await blackholeListener()
  t.teardown(async () => { await echo.close(); await blackhole.close(); await Promise.all(Object.values(servers).map((s) => s.close())) })

  // Routes: the malformed ones get a long timeout_ms, so answering well within it shows the gateway did not
  // wait for a timer; `hang` gets a short one, whose expiry is what the test measures.
  const TIMEOUT_MS = 600
  const SLOW_TIMEOUT_MS = 5000
  const IDLE_MS = 500
  const config = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  echo: { url: "${echo.origin}" }
  refused: { url: "http://127.0.0.1:${refusedPort}" }
  blackhole: { url: "http://127.0.0.1:${blackhole.port}" }
${Object.keys(faults).map((name) => `  ${name}: { url: "${servers[name as Fault].origin}" }`).join('\n')}
routes:
  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: ok, prefix: /ok, upstream: echo }
  - { name: refused, prefix: /refused, upstream: refused, timeout_ms: ${SLOW_TIMEOUT_MS} }
  - { name: hang, prefix: /hang, upstream: hang, timeout_ms: ${TIMEOUT_MS} }
  - { name: blackhole, prefix: /blackhole, upstream: blackhole, timeout_ms: ${TIMEOUT_MS} }
  - { name: stall-mid-body, prefix: /stall-mid-body, upstream: stall-mid-body, timeout_ms: ${SLOW_TIMEOUT_MS}, idle_timeout_ms: ${IDLE_MS} }
${Object.keys(faults).filter((n) => n !== 'hang' && n !== 'stall-mid-body').map((name) => `  - { name: ${name}, prefix: /${name}, upstream: ${name}, timeout_ms: ${SLOW_TIMEOUT_MS} }`).join('\n')}
`)
  const schema = await testSchema('upstream_faults')
  t.teardown(() => schema.drop())
  const kg = await spawnKeygate({ DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.stop() })
  const port = Number(new URL(kg.url).port)
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'faults' } })).json.api_key as string

  /** One request on a connection of its own; `keepAlive` leaves the connection open for the gateway to decide. */
  const send = (path: string, opts: { keepAlive?: boolean; then?: string; timeoutMs?: number } = {}) =>
    exchange(port, `GET ${path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${key}\r\n${opts.keepAlive ? '' : 'Connection: close\r\n'}\r\n${opts.then ?? ''}`, opts.timeoutMs)
  /** A second request pipelined behind the first: if the gateway spliced answers, its response would follow. */
  const behind = `GET /ok HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`

  t.equal(parse((await send('/ok')).raw).status, 200, 'a normal request is 200 before any fault')

  await t.test('a refused connection is 502 UPSTREAM_UNAVAILABLE at once', async (t) => {
    const r = await send('/refused')
    const p = parse(r.raw)
    t.equal(p.status, 502)
    t.equal(p.code, 'UPSTREAM_UNAVAILABLE')
    t.ok(r.ms < SLOW_TIMEOUT_MS / 2, `answered in ${r.ms.toFixed(0)} ms (timeout_ms ${SLOW_TIMEOUT_MS})`)
    // With a request body on a keep-alive connection: the answer still comes, then the connection closes
    // (the upload was never read).
    const post = await exchange(port, `POST /refused HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${key}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`, 5000)
    t.equal(parse(post.raw).code, 'UPSTREAM_UNAVAILABLE', 'with a request body too')
    t.equal(parse(post.raw).header('connection'), 'close')
    t.notOk(post.timedOut, 'and the connection closes after the answer')
  })

  await t.test('an upstream that accepts and never answers is 504 UPSTREAM_TIMEOUT when timeout_ms ends, and its connection is closed', async (t) => {
    for (let i = 0; i < 3; i++) {
      const r = await send('/hang')
      const p = parse(r.raw)
      t.equal(p.status, 504)
      t.equal(p.code, 'UPSTREAM_TIMEOUT')
      // Lower bound: the timer cannot fire early (Node starts timers from the loop's cached clock, so a busy loop
      // can make one look a little early from outside). Upper bound: the
      // timeout plus a generous margin for a loaded 2-core machine.
      t.ok(r.ms >= TIMEOUT_MS - 100 && r.ms < TIMEOUT_MS + 1500, `answered after ${r.ms.toFixed(0)} ms (timeout_ms ${TIMEOUT_MS})`)
    }
    const until = Date.now() + 2000
    while (servers.hang.open > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    t.equal(servers.hang.open, 0, 'the gateway closed its connections to the hanging upstream')
  })

  await t.test('an upstream that closes or resets before any byte is 502 UPSTREAM_UNAVAILABLE', async (t) => {
    for (const fault of ['close-before-any-byte', 'reset-before-any-byte'] as const) {
      const r = await send(`/${fault}`)
      const p = parse(r.raw)
      t.equal(p.status, 502, fault)
      t.equal(p.code, 'UPSTREAM_UNAVAILABLE', fault)
      t.ok(r.ms < SLOW_TIMEOUT_MS / 2, `${fault}: answered in ${r.ms.toFixed(0)} ms`)
    }
  })

  await t.test('a malformed response head is 502 UPSTREAM_UNAVAILABLE, never relayed', async (t) => {
    for (const fault of ['garbage-status-line', 'not-http-at-all', 'invalid-header', 'conflicting-content-length'] as const) {
      const r = await send(`/${fault}`)
      const p = parse(r.raw)
      t.equal(p.status, 502, fault)
      t.equal(p.code, 'UPSTREAM_UNAVAILABLE', fault)
      t.equal(p.responses, 1, `${fault}: one response`)
      t.notOk(r.raw.includes('OpenSSH') || r.raw.includes('Bad Header') || r.raw.includes('ok!'), `${fault}: nothing of the upstream's bytes reaches the client`)
      t.ok(r.ms < SLOW_TIMEOUT_MS / 2, `${fault}: answered in ${r.ms.toFixed(0)} ms`)
    }
  })

  await t.test('a response cut after it started: the client connection is cut, with an incomplete body and nothing spliced after it', async (t) => {
    for (const fault of ['cut-mid-body-length', 'cut-mid-body-chunked', 'short-body'] as const) {
      const r = await send(`/${fault}`, { keepAlive: true, then: behind })
      const p = parse(r.raw)
      t.notOk(r.timedOut, `${fault}: the gateway closed the connection (${r.ms.toFixed(0)} ms)`)
      t.equal(p.status, 200, `${fault}: the upstream's status was relayed`)
      t.equal(p.responses, 1, `${fault}: the pipelined request behind it got no answer on this connection`)
      const length = p.header('content-length')
      if (length !== undefined) {
        t.ok(Buffer.byteLength(p.body, 'latin1') < Number(length), `${fault}: ${Buffer.byteLength(p.body, 'latin1')} of ${length} bytes`)
      } else {
        t.equal(p.header('transfer-encoding'), 'chunked', `${fault}: relayed chunked`)
        t.notOk(p.body.endsWith('0\r\n\r\n'), `${fault}: the last chunk never comes`)
      }
    }
    // The same through an HTTP client: the body read fails, it does not hang or succeed.
    for (const fault of ['cut-mid-body-length', 'cut-mid-body-chunked', 'short-body'] as const) {
      const res = await request(`${kg.url}/${fault}`, { headers: { authorization: `Bearer ${key}` }, bodyTimeout: 10_000 })
      t.equal(res.statusCode, 200)
      await t.rejects(res.body.text(), `${fault}: an HTTP client sees the body fail`)
    }
  })

  await t.test('a response that stalls mid-body is cut after idle_timeout_ms', async (t) => {
    const r = await send('/stall-mid-body', { keepAlive: true, then: behind, timeoutMs: IDLE_MS + 5000 })
    const p = parse(r.raw)
    t.notOk(r.timedOut, 'the gateway closed the connection')
    t.equal(p.status, 200)
    t.equal(p.responses, 1, 'nothing spliced after it')
    t.ok(Buffer.byteLength(p.body, 'latin1') < 100000, 'the body is incomplete')
    t.ok(r.ms >= IDLE_MS - 100 && r.ms < IDLE_MS + 2000, `cut after ${r.ms.toFixed(0)} ms (idle_timeout_ms ${IDLE_MS})`)
  })

  await t.test('hundreds of faulty exchanges leak no file descriptor, and the gateway keeps serving', async (t) => {
    // Each path with the status it must get; the cut ones also a connection closed by the gateway.
    const expected: Record<string, number> = {
      '/hang': 504, '/refused': 502, '/close-before-any-byte': 502, '/reset-before-any-byte': 502, '/garbage-status-line': 502,
      '/not-http-at-all': 502, '/invalid-header': 502, '/conflicting-content-length': 502,
      '/cut-mid-body-length': 200, '/cut-mid-body-chunked': 200, '/short-body': 200, '/ok': 200,
    }
    const paths = Object.keys(expected)
    const cut = new Set(['/cut-mid-body-length', '/cut-mid-body-chunked', '/short-body'])
    const wrong: string[] = []
    const round = async (total: number, concurrency: number) => {
      let next = 0
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const path = paths[next++ % paths.length]!
          const r = await send(path, cut.has(path) ? { keepAlive: true, then: behind } : {})
          const p = parse(r.raw)
          if (r.timedOut || p.status !== expected[path] || p.responses !== 1) wrong.push(`${path}: ${p.status}, ${p.responses} responses${r.timedOut ? ', left hanging' : ''}`)
        }
      }))
    }
    // A first round at the same concurrency opens what stays open by design (pooled keep-alive connections to
    // the echo upstream and to PostgreSQL), so the baseline already holds them.
    await round(60, 8)
    const before = await settledFdCount(kg.pid)
    const started = performance.now()
    await round(360, 8)
    const elapsed = performance.now() - started
    t.same(wrong, [], `each of 360 exchanges got its answer, none was left hanging (${(elapsed / 1000).toFixed(1)} s)`)
    const after = await settledFdCount(kg.pid)
    // Slack: keep-alive sockets pooled by the gateway (to the echo upstream, up to the 8 concurrent clients,
    // and PostgreSQL connections for the last_used_at flush) may be open or closed at either reading; every
    // faulty exchange closes its own sockets, so a leak would grow with the 360 exchanges, far past 10.
    t.ok(after <= before + 10, `descriptors: ${before} before, ${after} after 360 faulty exchanges`)
    t.equal(parse((await send('/ok')).raw).status, 200, 'a normal request afterwards is 200')
    t.equal(parse((await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n')).raw).status, 200, 'and the process is healthy')
    t.comment(`fd counts: ${before} → ${after}`)
  })

  await t.test('an upstream whose TCP handshake never completes is 504 UPSTREAM_TIMEOUT within timeout_ms', async (t) => {
    t.notOk(await connects(blackhole.port), 'connecting to it hangs')
    const r = await send('/blackhole', { timeoutMs: 15_000 })
    const p = parse(r.raw)
    t.equal(p.status, 504)
    t.equal(p.code, 'UPSTREAM_TIMEOUT')
    t.ok(r.ms < TIMEOUT_MS + 1500, `answered after ${r.ms.toFixed(0)} ms (timeout_ms ${TIMEOUT_MS})`)

    const many = await Promise.all([
      ...Array.from({ length: 5 }, () => send('/blackhole', { timeoutMs: 15_000 })),
      exchange(port, `POST /blackhole HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${key}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`, 15_000),
    ])
    t.same(many.map((m) => parse(m.raw).code), Array(6).fill('UPSTREAM_TIMEOUT'), 'five concurrent requests and one with a body: each 504')
    const slowest = Math.max(...many.map((m) => m.ms))
    t.ok(slowest < TIMEOUT_MS + 1500, `the slowest after ${slowest.toFixed(0)} ms`)
  })

  await t.test('no credential appears in the gateway\'s output', async (t) => {
    t.same(leakedSecrets(kg.output, [key, jwt, BOOTSTRAP.password]), [])
  })

  await t.test('SIGTERM stops the gateway within its shutdown grace even while a connection attempt hangs', async (t) => {
    const started = performance.now()
    const code = await kg.stop()
    const ms = performance.now() - started
    t.equal(code, 0, 'it exits 0')
    // KEYGATE_SHUTDOWN_GRACE_MS is 2000 in tests; the connection attempt to the black hole is still pending.
    t.ok(ms < 2000 + 1500, `stopped in ${ms.toFixed(0)} ms`)
  })
})
