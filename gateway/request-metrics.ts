import type { CounterSeries, HistogramSeries } from '../core/metric-series.ts'
import type { Metrics } from '../core/metrics.ts'

/**
 * The metrics an HTTP exchange updates (`keygate_requests_total`, the gateway, upstream and request duration
 * histograms), as series resolved once per route name and then kept: a request finds its route's entry and
 * bumps plain numbers, folded into prom-client when /metrics is read (`core/metric-series.ts`).
 */
export interface RouteSeries {
  readonly gatewayDuration: HistogramSeries
  readonly upstreamDuration: HistogramSeries
  /** `keygate_request_duration_seconds` of a status class (`statusClassOf`). */
  requestDuration(statusClass: number): HistogramSeries
  /** `keygate_requests_total` of a method, status class and auth method. */
  requests(method: string, statusClass: number, auth: string): CounterSeries
}

export const STATUS_CLASS: readonly string[] = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx']

/** The index in `STATUS_CLASS` of a status (0 when nothing was sent, or past 5xx). */
export function statusClassOf(status: number): number {
  const c = Math.floor(status / 100)
  return c >= 0 && c < STATUS_CLASS.length ? c : 0
}

export function requestMetrics(metrics: Pick<Metrics, 'requests' | 'gatewayDuration' | 'upstreamDuration' | 'requestDuration'>): (routeName: string) => RouteSeries {
  const routes = new Map<string, RouteSeries>()
  const make = (route: string): RouteSeries => {
    const durations: HistogramSeries[] = []
    // By auth, then method, then status class: found without building a key string per request.
    const requests = new Map<string, Map<string, CounterSeries[]>>()
    return {
      gatewayDuration: metrics.gatewayDuration.series({ route }),
      upstreamDuration: metrics.upstreamDuration.series({ route }),
      requestDuration: (c) => (durations[c] ??= metrics.requestDuration.series({ route, status_class: STATUS_CLASS[c]! })),
      requests(method, c, auth) {
        let byMethod = requests.get(auth)
        if (!byMethod) requests.set(auth, (byMethod = new Map()))
        let byClass = byMethod.get(method)
        if (!byClass) byMethod.set(method, (byClass = []))
        return (byClass[c] ??= metrics.requests.series({ route, method, status_class: STATUS_CLASS[c]!, auth }))
      },
    }
  }
  return (route) => {
    let s = routes.get(route)
    if (!s) routes.set(route, (s = make(route)))
    return s
  }
}
