import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { close, echoServer, listen, routeFile } from '../helpers/upstreams.ts'

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

t.test('routes reload from a changed file, and a bad file keeps the old routes', async (t) => {
  const echo = await echoServer()
  const base = `upstreams:\n  admin: { url: "internal:admin" }\n  echo: { url: "${echo.origin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }\n  - { name: one, prefix: /one, upstream: echo, auth: public }\n`
  const file = routeFile(base)
  const kg = await keygateOnPostgres('reload', { KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await echo.close() })
  t.equal((await call(kg.url, 'GET', '/two')).status, 404)

  writeFileSync(file, base + '  - { name: two, prefix: /two, upstream: echo, auth: public }\n')
  t.ok(await until(async () => (await call(kg.url, 'GET', '/two')).status === 200, 3000), 'a new route serves after the file changes')

  writeFileSync(file, base.replace('upstream: echo, auth: public', 'upstream: nowhere, auth: sometimes'))
  await new Promise((r) => setTimeout(r, 500))
  t.equal((await call(kg.url, 'GET', '/two')).status, 200, 'an invalid file changes nothing')
  t.equal((await call(kg.url, 'GET', '/one')).status, 200)
  const failure = kg.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'route reload failed; the previous routes keep serving')
  t.ok(failure, 'and the failure is logged')
  t.match(failure?.problems.join('\n'), /routes\[1\]\.auth/, 'naming what is wrong')
  t.equal(kg.reload(), false, 'reload() (SIGHUP) reports the same')

  writeFileSync(file, base)
  t.ok(await until(async () => (await call(kg.url, 'GET', '/two')).status === 404, 3000), 'a valid file again applies')
  t.equal(kg.reload(), true)
})

t.test('prefix rewriting, host matching, several origins in turn, and trusted proxies', async (t) => {
  const a = await echoServer()
  const b = await echoServer()
  const file = routeFile(`upstreams:
  admin: { url: "internal:admin" }
  pair: { url: ["${a.origin}", "${b.origin}"] }
routes:
  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }
  - { name: rewrite, prefix: /v1, upstream: pair, auth: public, rewrite_prefix: /api/v2 }
  - { name: strip, prefix: /strip, upstream: pair, auth: public, strip_prefix: true }
  - { name: by-host, prefix: /h, host: "*.example.com", upstream: pair, auth: public, audience: hosted }
  - { name: any-host, prefix: /h, upstream: pair, auth: optional }
`)
  const kg = await keygateOnPostgres('routing', { KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await a.close(); await b.close() })
  const url = async (path: string, headers: Record<string, string> = {}) => (await call(kg.url, 'GET', path, { headers })).json as { url: string; headers: Record<string, string> }

  t.equal((await url('/v1/items?x=1')).url, '/api/v2/items?x=1', 'rewrite_prefix replaces the prefix')
  t.equal((await url('/strip/a/b')).url, '/a/b', 'strip_prefix removes it')
  t.equal((await url('/strip')).url, '/', 'down to the root')
  a.seen.length = 0
  b.seen.length = 0
  for (let i = 0; i < 6; i++) await url('/strip/x')
  t.same([a.seen.length, b.seen.length], [3, 3], 'several origins take turns')

  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const hosted = await call(kg.url, 'GET', '/h', { headers: { host: 'api.example.com:8080' } })
  t.notOk(hosted.json.headers['x-keygate-identity'], 'the host-specific route (public) wins for its host')
  const other = await call(kg.url, 'GET', '/h', { token: jwt, headers: { host: 'other.test' } })
  t.ok(other.json.headers['x-keygate-identity'], 'other hosts fall through to the general route')

  const viaProxy = await url('/strip', { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' })
  t.equal(viaProxy.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'from a trusted proxy, the client address is kept and the proxy appended')
  t.equal(viaProxy.headers['x-forwarded-proto'], 'https')
  t.equal(viaProxy.headers['x-forwarded-host'], 'public.example')
  t.equal(viaProxy.headers['x-keygate-client-address'], '203.0.113.7', 'the client address is the nearest one that is not a trusted proxy')
  const spoofed = await url('/strip', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7, 127.0.0.5', 'x-keygate-client-address': '192.0.2.66' })
  t.equal(spoofed.headers['x-keygate-client-address'], '203.0.113.7', 'addresses left of the first untrusted one, and a client-sent x-keygate-client-address, are ignored')
})

t.test('SIGTERM drain: in-flight requests finish, WebSockets get 1001, new connections are refused', async (t) => {
  // The upstream counts arrivals, so the drain starts once all 20 requests are in flight (not after a fixed wait).
  let arrived = 0
  let allArrived!: () => void
  const arrivedAll = new Promise<void>((r) => { allArrived = r })
  const slow = createServer((_req, res) => { if (++arrived === 20) allArrived(); setTimeout(() => res.end('done'), 400) })
  const wss = new WebSocketServer({ server: slow })
  const origin = await listen(slow)
  const file = routeFile(`upstreams:\n  admin: { url: "internal:admin" }\n  slow: { url: "${origin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }\n  - { name: slow, prefix: /slow, upstream: slow, websockets: true }\n`)
  const kg = await keygateOnPostgres('drain', { KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_SHUTDOWN_GRACE_MS: '5000' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); wss.close(); await close(slow) })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const ws = new WebSocket(`${kg.url.replace('http', 'ws')}/slow`, { headers: { authorization: `Bearer ${jwt}` } })
  await new Promise((r) => ws.once('open', r))
  const wsCode = new Promise<number>((r) => ws.once('close', (code) => r(code)))

  const inflight = Array.from({ length: 20 }, () => fetch(`${kg.url}/slow`, { headers: { authorization: `Bearer ${jwt}` } }).then((r) => r.status, () => 0))
  await arrivedAll
  const closing = kg.close()
  await new Promise((r) => setTimeout(r, 50))
  const ready = await fetch(`${kg.url}/readyz`).then((r) => r.status, () => 0)
  t.ok(ready === 503 || ready === 0, `readiness fails while draining (${ready})`)
  t.same(await Promise.all(inflight), Array(20).fill(200), 'all 20 in-flight requests finish with 200')
  t.equal(await wsCode, 1001, 'the WebSocket was told the server is going away')
  await closing
  const after = await fetch(`${kg.url}/healthz`).then((r) => r.status, () => 0)
  t.equal(after, 0, 'new connections are refused once drained')
})
