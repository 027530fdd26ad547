import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { routeSchema } from '../../../config/schema.ts'
import { corsStage } from '../../../gateway/cors.ts'
import { createRouter, routeWithDefaults } from '../../../gateway/router.ts'

const APP = 'https://app.example.com'
const router = createRouter([
  routeWithDefaults({ name: 'login', prefix: '/login', upstream: 'up', methods: ['POST'] }),
  routeWithDefaults({ name: 'api', prefix: '/api', upstream: 'up' }),
  routeWithDefaults({ name: 'partner', prefix: '/partner', upstream: 'up', cors: { origins: ['https://partner.example.com'], credentials: false, max_age_sec: 60, allow_headers: ['x-tenant'], expose_headers: ['x-total'] } }),
  routeWithDefaults({ name: 'closed', prefix: '/closed', upstream: 'up', cors: { origins: [], credentials: true, max_age_sec: 600, allow_headers: [], expose_headers: [] } }),
])

/** A server running only the CORS stage; what it did not answer gets 299 (the rest of the pipeline). */
async function serve(defaults: string[]): Promise<Server> {
  const stage = corsStage(defaults, () => router)
  const server = createServer((req, res) => {
    const outcome = stage(req, res, 'rid-1')
    if (!outcome.answered) res.writeHead(299, ['x-upstream', 'yes']).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return server
}

function send(server: Server, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', method, path, headers }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}
const corsHeaders = (h: IncomingHttpHeaders) => Object.keys(h).filter((k) => k.startsWith('access-control-'))

t.test('a preflight from an allowed origin is answered before anything else, never with *', async (t) => {
  const server = await serve([APP])
  t.teardown(() => server.close())
  const res = await send(server, 'OPTIONS', '/login', { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' })
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-credentials'], 'true')
  t.equal(res.headers['access-control-allow-methods'], 'POST', 'the route\'s methods (the route takes POST only, not OPTIONS)')
  t.match(res.headers['access-control-allow-headers'], /authorization/)
  t.equal(res.headers['access-control-max-age'], '600')
  t.match(res.headers.vary, /Origin/)
  t.equal(res.headers['x-request-id'], 'rid-1')
})

t.test('a preflight from another origin is 403 CORS_ORIGIN_FORBIDDEN with no CORS header', async (t) => {
  const server = await serve([APP])
  t.teardown(() => server.close())
  for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'http://app.example.com', 'null']) {
    const res = await send(server, 'OPTIONS', '/api/x', { origin, 'access-control-request-method': 'GET' })
    t.equal(res.status, 403, origin)
    t.equal(JSON.parse(res.body).code, 'CORS_ORIGIN_FORBIDDEN')
    t.same(corsHeaders(res.headers), [], `${origin}: no access-control-* header`)
  }
})

t.test('other requests from an allowed origin are marked, from others not; Vary: Origin on both', async (t) => {
  const server = await serve([APP])
  t.teardown(() => server.close())
  const mine = await send(server, 'GET', '/api/x', { origin: APP })
  t.equal(mine.status, 299, 'left to the rest of the pipeline')
  t.equal(mine.headers['access-control-allow-origin'], APP)
  t.equal(mine.headers['access-control-expose-headers'], 'x-request-id, ratelimit, ratelimit-policy, retry-after')
  t.equal(mine.headers.vary, 'Origin')
  const theirs = await send(server, 'GET', '/api/x', { origin: 'https://evil.example.com' })
  t.equal(theirs.status, 299)
  t.same(corsHeaders(theirs.headers), [])
  t.equal(theirs.headers.vary, 'Origin')
  const plain = await send(server, 'OPTIONS', '/api/x', {})
  t.equal(plain.status, 299, 'an OPTIONS that is no preflight goes on')
})

t.test('a route\'s cors block replaces the default; origins: [] turns it off', async (t) => {
  const server = await serve([APP])
  t.teardown(() => server.close())
  const partner = await send(server, 'OPTIONS', '/partner/x', { origin: 'https://partner.example.com', 'access-control-request-method': 'PUT' })
  t.equal(partner.status, 204)
  t.equal(partner.headers['access-control-allow-credentials'], undefined, 'credentials: false')
  t.equal(partner.headers['access-control-max-age'], '60')
  t.match(partner.headers['access-control-allow-headers'], /x-tenant/)
  t.equal((await send(server, 'OPTIONS', '/partner/x', { origin: APP, 'access-control-request-method': 'PUT' })).status, 403, 'the default origin is not the partner route\'s')
  t.equal((await send(server, 'GET', '/partner/x', { origin: 'https://partner.example.com' })).headers['access-control-expose-headers'], 'x-request-id, ratelimit, ratelimit-policy, retry-after, x-total')
  const closed = await send(server, 'OPTIONS', '/closed/x', { origin: APP, 'access-control-request-method': 'GET' })
  t.equal(closed.status, 299, 'no policy: the request goes on as any other')
  t.same(corsHeaders(closed.headers), [])
})

t.test('without KEYGATE_CORS_ORIGINS nothing changes', async (t) => {
  const server = await serve([])
  t.teardown(() => server.close())
  const res = await send(server, 'OPTIONS', '/api/x', { origin: APP, 'access-control-request-method': 'GET' })
  t.equal(res.status, 299)
  t.same(corsHeaders(res.headers), [])
  t.equal(res.headers.vary, undefined)
})

t.test('a cors block takes exact origins only', async (t) => {
  for (const origin of ['*', 'https://*.example.com', 'https://app.example.com/', 'app.example.com', 'https://app.example.com/path']) {
    t.notOk(routeSchema.safeParse({ name: 'r', prefix: '/r', upstream: 'up', cors: { origins: [origin] } }).success, `${origin} is refused`)
  }
  t.ok(routeSchema.safeParse({ name: 'r', prefix: '/r', upstream: 'up', cors: { origins: ['http://localhost:3000', 'https://[::1]:8443'] } }).success)
})

t.test('without any policy the stage leaves every request alone, until reloaded routes bring one', async (t) => {
  let current = createRouter([routeWithDefaults({ name: 'api', prefix: '/api', upstream: 'up' })])
  const stage = corsStage([], () => current)
  const server = createServer((req, res) => {
    const outcome = stage(req, res, 'rid-1')
    if (!outcome.answered) res.writeHead(299, ['x-upstream', 'yes']).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const before = await send(server, 'GET', '/api/x', { origin: APP })
  t.equal(before.status, 299)
  t.equal(before.headers.vary, undefined, 'no Vary: Origin where no route has a policy')
  t.same(corsHeaders(before.headers), [])
  current = createRouter([routeWithDefaults({ name: 'api', prefix: '/api', upstream: 'up', cors: { origins: [APP], credentials: true, max_age_sec: 60, allow_headers: [], expose_headers: [] } })])
  const after = await send(server, 'GET', '/api/x', { origin: APP })
  t.equal(after.status, 299)
  t.equal(after.headers.vary, 'Origin', 'the reloaded route\'s policy applies at once')
  t.equal(after.headers['access-control-allow-origin'], APP)
})
