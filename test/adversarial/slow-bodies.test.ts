import { connect, type Socket } from 'node:net'
import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Slow bodies on a public route: 300 unauthenticated uploads to the login route, each trickling one byte a
 * second, used to fill the connection pool to the admin API (which login shares) so that every admin call,
 * a key revocation included, answered 504. Public routes now read the body before the upstream is involved,
 * within `body_timeout_ms`: the admin API of a gateway under such an attack still answers at once.
 */
const SLOW = 300

/** Opens a login request that declares 1000 body bytes and sends one a second. */
function slowLogin(port: number, path = '/api/v1/auth/login'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
      const drip = setInterval(() => { if (!socket.destroyed) socket.write(' ') }, 1000)
      socket.once('close', () => clearInterval(drip))
      resolve(socket)
    })
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

t.test('300 slow bodies on the public login route do not slow the admin API for authenticated calls', async (t) => {
  const { kg } = await echoGateway(t, 'adv_slow_bodies', { routes: '- { name: echo, prefix: /echo, upstream: echo }' })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'to revoke' } })).json

  const sockets = await Promise.all(Array.from({ length: SLOW }, () => slowLogin(kg.port)))
  t.teardown(() => { for (const s of sockets) s.destroy() })
  await new Promise((r) => setTimeout(r, 500))

  const times: number[] = []
  for (let i = 0; i < 10; i++) {
    const start = performance.now()
    const me = await call(kg.url, 'GET', '/api/v1/auth/me', { token: jwt })
    times.push(performance.now() - start)
    t.equal(me.status, 200, `authenticated admin call ${i + 1} answered 200 under ${SLOW} slow bodies`)
  }
  const start = performance.now()
  const revoked = await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })
  times.push(performance.now() - start)
  t.equal(revoked.status, 200, 'a key revocation goes through')
  const sorted = [...times].sort((a, b) => a - b)
  const p50 = sorted[Math.floor(sorted.length / 2)]!
  const max = sorted.at(-1)!
  t.ok(max < 1000, `admin API latency under ${SLOW} slow bodies: p50 ${p50.toFixed(0)} ms, max ${max.toFixed(0)} ms (well under a second)`)
  t.comment(`figure: admin API p50 ${p50.toFixed(0)} ms, max ${max.toFixed(0)} ms under ${SLOW} slow bodies`)
  t.equal(sockets.filter((s) => !s.destroyed).length, SLOW, 'the slow uploads are still open (within their 10 s body timeout)')
})

t.test('a body that does not arrive within body_timeout_ms is refused with 408 BODY_TIMEOUT and never forwarded', async (t) => {
  const { kg, echo } = await echoGateway(t, 'adv_body_timeout', { routes: '- { name: upload, prefix: /upload, upstream: echo, auth: public, body_timeout_ms: 500 }' })
  const started = performance.now()
  const { response, timedOut } = await rawExchange(kg.port, 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly part of it', 5000)
  const after = performance.now() - started
  t.notOk(timedOut, 'answered and closed')
  t.same(statusAndCode(response), { status: 408, code: 'BODY_TIMEOUT' })
  t.ok(after >= 450 && after < 2500, `after the 500 ms body timeout (${after.toFixed(0)} ms)`)
  t.equal(echo.seen.length, 0, 'nothing reached the upstream')
  const whole = await rawExchange(kg.port, 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello', 5000)
  t.equal(statusAndCode(whole.response).status, 200, 'a body that arrives in time is forwarded')
  t.equal(echo.seen.length, 1)
})

t.test('max_concurrent bounds what one route holds: one more is 503 ROUTE_BUSY at once, other routes are untouched', async (t) => {
  const { kg, echo } = await echoGateway(t, 'adv_route_slots', { routes: `
    - { name: upload, prefix: /upload, upstream: echo, auth: public, read_body_first: false, max_concurrent: 2 }
    - { name: other, prefix: /other, upstream: echo, auth: public }
  ` })
  const holders = await Promise.all([slowLogin(kg.port, '/upload'), slowLogin(kg.port, '/upload')])
  t.teardown(() => { for (const s of holders) s.destroy() })
  await new Promise((r) => setTimeout(r, 200))
  const started = performance.now()
  const busy = await rawExchange(kg.port, 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 5000)
  t.same(statusAndCode(busy.response), { status: 503, code: 'ROUTE_BUSY' }, 'a third exchange on the route is refused')
  t.match(busy.response, /\r\nretry-after: 1\r\n/i, 'with Retry-After: 1')
  t.ok(performance.now() - started < 1000, 'at once')
  t.equal(statusAndCode((await rawExchange(kg.port, 'GET /other HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n', 5000)).response).status, 200, 'another route on the same upstream answers')
  for (const s of holders) s.destroy()
  await new Promise((r) => setTimeout(r, 200))
  const after = await rawExchange(kg.port, 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 5000)
  t.equal(statusAndCode(after.response).status, 200, 'once the holders left, the route takes requests again')
  t.equal(echo.seen.filter((r) => r.url === '/upload').length, 3, 'the upstream saw the two holders and the last request, not the refused one')
})
