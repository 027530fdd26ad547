import { writeFileSync } from 'node:fs'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { echoServer, hangingServer, routeFile } from '../helpers/upstreams.ts'
import { freePort } from '../helpers/ports.ts'

/** The access lines of `kg` for a request id. */
function accessLine(logs: readonly string[], requestId: string): Record<string, unknown> {
  const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.request_id === requestId)
  if (!line) throw new Error(`no access line for ${requestId}`)
  return line
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

t.test('the access line, trace context and metrics answer "who asked for what"', async (t) => {
  const echo = await echoServer()
  const hanging = await hangingServer()
  const closedPort = await freePort()
  t.teardown(() => Promise.all([echo.close(), hanging.close()]))
  const yaml = (extra = '') => `
upstreams:
  admin: { url: "internal:admin" }
  echo: { url: "${echo.origin}" }
  slow: { url: "${hanging.origin}" }
  down: { url: "http://127.0.0.1:${closedPort}" }
routes:
  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: echo, prefix: /echo, upstream: echo }
  - { name: slow, prefix: /slow, upstream: slow, timeout_ms: 200 }
  - { name: down, prefix: /down, upstream: down }
${extra}`
  const config = routeFile(yaml())
  const kg = await keygateOnPostgres('observability', { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '5', KEYGATE_CONFIG_WATCH: 'false' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const created = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'observed' } })).json
  const key: string = created.api_key
  const metrics = () => fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text())

  await t.test('a forwarded request logs path without query, client, user agent, bytes, upstream and trace id', async (t) => {
    echo.seen.length = 0
    const res = await fetch(`${kg.url}/echo/items?secret=hunter2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'user-agent': 'ops-probe/1.0', 'x-request-id': 'obs-forwarded', 'content-type': 'text/plain', traceparent: `00-${TRACE_ID}-${PARENT}-01`, tracestate: 'vendor=abc,other=x' },
      body: 'x'.repeat(1000),
    })
    const text = await res.text()
    t.equal(res.status, 200)
    const line = accessLine(kg.logs, 'obs-forwarded')
    t.match(line, { route: 'echo', method: 'POST', path: '/echo/items', status: 200, client: '127.0.0.1', user_agent: 'ops-probe/1.0', upstream: echo.origin, trace_id: TRACE_ID, auth: 'api_key', key_id: created.id })
    t.ok((line.bytes_in as number) > 1000, `bytes_in counts the request with its body (${line.bytes_in})`)
    t.ok((line.bytes_out as number) > text.length, `bytes_out counts the answer with its headers (${line.bytes_out})`)
    t.notMatch(JSON.stringify(line), /hunter2/, 'the query string is not logged')
    t.notMatch(kg.logs.join('\n'), key, 'the key is never logged')
    const hop = echo.seen[0]!.headers
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(hop.traceparent))
    t.ok(m, `the upstream gets a traceparent (${hop.traceparent})`)
    t.equal(m?.[1], TRACE_ID, 'the trace continues')
    t.not(m?.[2], PARENT, 'with the gateway\'s own span id for the hop')
    t.equal(hop.tracestate, 'vendor=abc,other=x', 'tracestate is passed on')
  })

  await t.test('without traceparent a trace starts here, and its id is in the access line', async (t) => {
    echo.seen.length = 0
    await fetch(`${kg.url}/echo/a`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'obs-started', tracestate: 'orphan=1' } }).then((r) => r.text())
    const line = accessLine(kg.logs, 'obs-started')
    const hop = echo.seen[0]!.headers
    t.match(line.trace_id, /^[0-9a-f]{32}$/)
    t.equal(hop.traceparent, `00-${line.trace_id}-${String(hop.traceparent).slice(36, 52)}-01`, 'the upstream gets the trace the access line names')
    t.notOk('tracestate' in hop, 'a tracestate without its traceparent is dropped')
  })

  await t.test('a refused request: the access line names the code, the revoked key by id, never the secret', async (t) => {
    const other = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'to revoke' } })).json
    t.equal((await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${other.id}`, { token: jwt })).status, 200)
    const res = await fetch(`${kg.url}/echo/private?token=abc`, { headers: { authorization: `Bearer ${other.api_key}`, 'x-request-id': 'obs-revoked', 'user-agent': 'curl/8.0' } })
    t.equal(res.status, 401)
    await res.text()
    const line = accessLine(kg.logs, 'obs-revoked')
    t.match(line, { status: 401, code: 'KEY_REVOKED', key_id: other.id, route: 'echo', path: '/echo/private', client: '127.0.0.1', user_agent: 'curl/8.0', auth: 'none' })
    t.notOk('upstream' in line, 'nothing went upstream')
    t.notMatch(kg.logs.join('\n'), other.api_key, 'the secret is never logged')
    t.comment(`access line of a refused request: ${JSON.stringify(line)}`)
  })

  await t.test('an upstream that refuses connections: 502, cause ECONNREFUSED in the line and the metric', async (t) => {
    const res = await fetch(`${kg.url}/down/x`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'obs-down' } })
    t.equal(res.status, 502)
    await res.text()
    t.match(accessLine(kg.logs, 'obs-down'), { status: 502, code: 'UPSTREAM_UNAVAILABLE', cause: 'ECONNREFUSED', upstream: `http://127.0.0.1:${closedPort}` })
    t.match(await metrics(), /keygate_upstream_failures_total\{route="down",status="502",cause="ECONNREFUSED"\} 1/)
  })

  await t.test('an upstream that does not answer in time: 504, cause timeout, told apart from 502 in the metrics', async (t) => {
    const res = await fetch(`${kg.url}/slow/x`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'obs-slow' } })
    t.equal(res.status, 504)
    await res.text()
    t.match(accessLine(kg.logs, 'obs-slow'), { status: 504, code: 'UPSTREAM_TIMEOUT', cause: 'timeout' })
    t.match(await metrics(), /keygate_upstream_failures_total\{route="slow",status="504",cause="timeout"\} 1/)
  })

  await t.test('metrics: end-to-end duration, build info, route reloads and the last good load', async (t) => {
    const before = await metrics()
    t.match(before, /keygate_request_duration_seconds_count\{route="echo",status_class="2xx"\} [1-9]/)
    t.match(before, /keygate_request_duration_seconds_bucket\{le="\+Inf",route="echo",status_class="4xx"\} [1-9]/)
    t.match(before, /keygate_build_info\{version="\d+\.\d+\.\d+[^"]*",node="\d+\.\d+\.\d+"\} 1/)
    const loadedAt = Number(/^keygate_routes_last_load_timestamp_seconds (\S+)$/m.exec(before)?.[1])
    t.ok(loadedAt > 1e9, 'the start-up load time is set')
    writeFileSync(config, 'routes: [')
    t.equal(kg.reload(), false, 'a broken file is refused')
    writeFileSync(config, yaml('  - { name: extra, prefix: /extra, upstream: echo }'))
    await new Promise((r) => setTimeout(r, 20))
    t.equal(kg.reload(), true, 'a good one applies')
    const after = await metrics()
    t.match(after, /keygate_route_reloads_total\{result="failure"\} 1/)
    t.match(after, /keygate_route_reloads_total\{result="success"\} 1/)
    t.ok(Number(/^keygate_routes_last_load_timestamp_seconds (\S+)$/m.exec(after)?.[1]) > loadedAt, 'the last good load moved forward')
  })
})
