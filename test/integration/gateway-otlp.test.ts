import { createServer } from 'node:http'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { keygateOnPglite } from '../helpers/keygate.ts'
import { close, echoRouteFile, echoServer, listen } from '../helpers/upstreams.ts'

interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Array<{ key: string; value: Record<string, unknown> }>; status?: { code?: number } }

/** A real OTLP/HTTP receiver: decodes the JSON payloads posted to /v1/traces. */
async function otlpReceiver() {
  const spans: Array<OtlpSpan & { service: string }> = []
  const paths: string[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`)
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      const payload = JSON.parse(body.toString('utf8')) as { resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
      for (const rs of payload.resourceSpans) {
        const service = String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue)
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service })
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
  })
  return { origin: await listen(server), spans, paths, close: () => close(server) }
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value
  return v && (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined))
}

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT each request is exported as a span carrying the ids the upstream saw', async (t) => {
  const receiver = await otlpReceiver()
  const echo = await echoServer()
  t.teardown(() => Promise.all([receiver.close(), echo.close()]))
  const kg = await keygateOnPglite({
    KEYGATE_CONFIG: echoRouteFile(echo.origin, '- { name: open, prefix: /open, upstream: echo, auth: public }\n- { name: closed, prefix: /closed, upstream: echo }'),
    KEYGATE_DEMOS: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin,
    OTEL_SERVICE_NAME: 'edge-gateway',
  })
  t.teardown(() => kg.removeData())
  const parent = '00f067aa0ba902b7'
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  t.equal((await fetch(`${kg.url}/open/a?q=1`, { headers: { traceparent: `00-${traceId}-${parent}-01` } }).then((r) => r.status)), 200)
  const hop = String(echo.seen[0]!.headers.traceparent)
  t.equal((await fetch(`${kg.url}/closed/b`).then((r) => r.status)), 401)
  t.equal((await fetch(`${kg.url}/open/c`, { headers: { traceparent: `00-${'1'.repeat(32)}-${parent}-00` } }).then((r) => r.status)), 200)
  // Closing flushes the batch.
  await kg.close()

  t.ok(receiver.paths.every((p) => p.startsWith('POST /v1/traces application/json')), `posted to /v1/traces as JSON (${receiver.paths.join('; ')})`)
  t.equal(receiver.spans.length, 2, 'two spans: the unsampled trace is not exported')
  const forwarded = receiver.spans.find((s) => attr(s, 'http.route') === 'open')!
  t.ok(forwarded, 'the forwarded request is a span')
  t.equal(forwarded.traceId, traceId, 'in the caller\'s trace')
  t.equal(forwarded.parentSpanId, parent, 'under the caller\'s span')
  t.equal(hop, `00-${traceId}-${forwarded.spanId}-01`, 'its span id is the parent the upstream was given')
  t.equal(forwarded.kind, 2, 'kind SERVER')
  t.equal(forwarded.service, 'edge-gateway')
  t.equal(attr(forwarded, 'url.path'), '/open/a', 'the path, without the query')
  t.equal(attr(forwarded, 'http.response.status_code'), 200)
  const refused = receiver.spans.find((s) => attr(s, 'http.route') === 'closed')!
  t.equal(attr(refused, 'keygate.code'), 'AUTH_REQUIRED')
  t.equal(attr(refused, 'http.response.status_code'), 401)
  const line = kg.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.route === 'closed')
  t.equal(refused.traceId, line.trace_id, 'a trace started here has the id of the access line')
  t.notOk(refused.parentSpanId, 'and is a root span')
})
