import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { newSpanId, newTraceId, pushTraceHeaders, traceContextOf, validTracestate } from '../../../gateway/trace-context.ts'

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN = '00f067aa0ba902b7'

t.test('a valid traceparent is continued with a new span id for the hop, its flags and tracestate kept', async (t) => {
  const c = traceContextOf(req({ traceparent: `00-${TRACE}-${SPAN}-00`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' }))
  t.equal(c.traceId, TRACE)
  t.equal(c.parentId, SPAN)
  t.match(c.spanId, /^[0-9a-f]{16}$/)
  t.not(c.spanId, SPAN)
  t.equal(c.flags, '00', 'an unsampled trace stays unsampled')
  t.equal(c.state, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')
  const headers: string[] = []
  pushTraceHeaders(headers, c)
  t.same(headers, ['traceparent', `00-${TRACE}-${c.spanId}-00`, 'tracestate', c.state])
})

t.test('a later version is read by its first four fields; version ff and extra fields on 00 are refused', async (t) => {
  t.equal(traceContextOf(req({ traceparent: `01-${TRACE}-${SPAN}-01-future` })).traceId, TRACE)
  t.not(traceContextOf(req({ traceparent: `ff-${TRACE}-${SPAN}-01` })).traceId, TRACE)
  t.not(traceContextOf(req({ traceparent: `00-${TRACE}-${SPAN}-01-extra` })).traceId, TRACE)
})

t.test('a malformed traceparent starts a new sampled trace and drops tracestate', async (t) => {
  for (const bad of [
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `00-${TRACE}-${SPAN}`,
    `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`,
    'garbage',
    '',
  ]) {
    const c = traceContextOf(req({ traceparent: bad, tracestate: 'a=b' }))
    t.not(c.traceId, TRACE, `refused: ${JSON.stringify(bad)}`)
    t.equal(c.parentId, undefined)
    t.equal(c.flags, '01')
    t.equal(c.state, undefined)
  }
})

t.test('tracestate: members checked, 32 at most, 512 characters at most', async (t) => {
  t.ok(validTracestate('vendor=value'))
  t.ok(validTracestate('tenant@vendor=v, other=x'))
  t.notOk(validTracestate('Vendor=value'), 'keys are lowercase')
  t.notOk(validTracestate('vendor'), 'a member needs a value')
  t.notOk(validTracestate('vendor=a=b'), 'no = in a value')
  t.notOk(validTracestate('v=\u0001'), 'no control characters')
  t.notOk(validTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')), '33 members')
  t.notOk(validTracestate(`k=${'x'.repeat(256)},l=${'x'.repeat(256)}`), 'over 512 characters')
  const c = traceContextOf(req({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'Bad Key=1' }))
  t.equal(c.traceId, TRACE, 'the trace is continued')
  t.equal(c.state, undefined, 'without the malformed tracestate')
})

t.test('new ids are well formed and differ', async (t) => {
  const traces = new Set(Array.from({ length: 1000 }, newTraceId))
  const spans = new Set(Array.from({ length: 1000 }, newSpanId))
  t.equal(traces.size, 1000)
  t.equal(spans.size, 1000)
  t.ok([...traces].every((id) => /^[0-9a-f]{32}$/.test(id) && id !== '0'.repeat(32)))
  t.ok([...spans].every((id) => /^[0-9a-f]{16}$/.test(id)))
})
