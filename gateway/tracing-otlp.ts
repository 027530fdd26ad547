import { ROOT_CONTEXT, SpanKind, SpanStatusCode, createTraceState, trace as otelTrace, type Attributes } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { newSpanId, newTraceId, type RequestSpan, type SpanRecorder, type TraceContext } from './trace-context.ts'

/**
 * OpenTelemetry export of one span per request (kind SERVER), to an OTLP/HTTP collector: the standard JS SDK
 * with its batch processor and OTLP/HTTP exporter (JSON). Loaded by the entry point with a dynamic import only
 * when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, so a gateway without it neither loads the SDK nor pays for it.
 *
 * The span carries the ids the upstream saw in `traceparent` (the gateway makes them in `trace-context.ts` and
 * hands them to the SDK through its id generator), so the collector joins the gateway's span with the
 * upstream's. The sampling decision is the caller's (`traceparent` flags; sampled when the trace starts here).
 */
export function otlpSpanRecorder(options: { endpoint: string; serviceName: string; version: string }): SpanRecorder {
  // The ids of the span being started, read by the SDK synchronously inside startSpan.
  let nextTraceId: string | undefined
  let nextSpanId: string | undefined
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.version }),
    idGenerator: { generateTraceId: () => nextTraceId ?? newTraceId(), generateSpanId: () => nextSpanId ?? newSpanId() },
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(options.endpoint) }))],
  })
  const tracer = provider.getTracer('keygate', options.version)
  return {
    record(trace: TraceContext, span: RequestSpan) {
      const parent = trace.parentId === undefined ? ROOT_CONTEXT : otelTrace.setSpanContext(ROOT_CONTEXT, {
        traceId: trace.traceId,
        spanId: trace.parentId,
        traceFlags: parseInt(trace.flags, 16) & 1,
        isRemote: true,
        traceState: trace.state ? createTraceState(trace.state) : undefined,
      })
      const attributes: Attributes = {
        'http.request.method': span.method,
        'url.path': span.path,
        'http.route': span.route,
      }
      if (span.status) attributes['http.response.status_code'] = span.status
      if (span.code) attributes['keygate.code'] = span.code
      if (span.cause) attributes['keygate.upstream.cause'] = span.cause
      if (span.upstream) attributes['keygate.upstream.origin'] = span.upstream
      nextTraceId = trace.traceId
      nextSpanId = trace.spanId
      let started
      try {
        started = tracer.startSpan(`${span.method} ${span.route}`, { kind: SpanKind.SERVER, startTime: span.startMs, attributes }, parent)
      } finally {
        nextTraceId = nextSpanId = undefined
      }
      if (span.status >= 500 || span.status === 0) started.setStatus({ code: SpanStatusCode.ERROR, message: span.code })
      started.end(span.endMs)
    },
    close: () => provider.shutdown(),
  }
}

/** The collector's traces endpoint: the base URL plus `/v1/traces`, as the OpenTelemetry specification builds it. */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`
}
