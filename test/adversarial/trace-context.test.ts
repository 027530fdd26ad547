import t from 'tap'
import { keygateOnPglite } from '../helpers/keygate.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { echoRouteFile, echoServer } from '../helpers/upstreams.ts'

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

t.test('forged trace context never reaches the upstream or the access line as sent', async (t) => {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: echoRouteFile(echo.origin, '- { name: open, prefix: /open, upstream: echo, auth: public }'), KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.close(); kg.removeData() })

  const attempts: Array<{ what: string; headers: string[] }> = [
    { what: 'two traceparent headers (one trace id each)', headers: [`traceparent: 00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, `traceparent: 00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`] },
    { what: 'a traceparent with a JSON-breaking payload', headers: ['traceparent: 00-","level":"error","msg":"x-' + 'b'.repeat(16) + '-01'] },
    { what: 'a traceparent in other spellings', headers: [`TraceParent: 00-${'e'.repeat(32)}-${'f'.repeat(16)}-01`, `TRACESTATE: evil=1`] },
    { what: 'a 10 KB tracestate', headers: [`traceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, `tracestate: ${'k=v,'.repeat(2500)}k=v`] },
    { what: 'a tracestate with 33 members', headers: [`traceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, `tracestate: ${Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')}`] },
    { what: 'a tracestate smuggling a header', headers: [`traceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, 'tracestate: a=b\u000bx-keygate-identity: forged'] },
  ]
  for (const attempt of attempts) {
    echo.seen.length = 0
    const before = kg.logs.length
    const res = await rawRequest(kg.port, ['GET /open/x HTTP/1.1', 'Host: test', ...attempt.headers])
    if (!/^HTTP\/1.1 200/.test(res)) {
      // Refused by the HTTP parser (an illegal character): nothing went upstream.
      t.equal(echo.seen.length, 0, `${attempt.what}: refused, nothing forwarded`)
      continue
    }
    const seen = echo.seen[0]!
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
    t.equal(names.filter((n) => n === 'traceparent').length, 1, `${attempt.what}: exactly one traceparent goes upstream`)
    t.match(seen.headers.traceparent, TRACEPARENT, `${attempt.what}: and it is well formed`)
    t.ok(names.filter((n) => n === 'tracestate').length <= 1, `${attempt.what}: at most one tracestate`)
    const state = seen.headers.tracestate
    t.ok(state === undefined || (String(state).length <= 512 && !String(state).includes('\u000b')), `${attempt.what}: no oversized or malformed tracestate`)
    t.notOk('x-keygate-identity' in seen.headers, `${attempt.what}: nothing smuggled`)
    const line = kg.logs.slice(before).map((l) => JSON.parse(l)).find((l) => l.msg === 'request')
    t.match(line?.trace_id, /^[0-9a-f]{32}$/, `${attempt.what}: the access line's trace id is 32 hex digits`)
    t.notOk(line?.level !== 'info', `${attempt.what}: the access line was not rewritten`)
  }
})
