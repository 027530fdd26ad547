import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '../core/error-codes.ts'
import { writeProblem } from '../core/problem.ts'
import type { Route, Router } from './router.ts'
import { normalizePath } from './stage-path.ts'

/** What one route allows browsers on other origins to do. */
export interface CorsPolicy {
  /** Exact origins (`https://app.example.com`); never `*`: credentials are allowed. */
  readonly origins: readonly string[]
  readonly credentials: boolean
  readonly max_age_sec: number
  /** Request headers a preflight allows besides `authorization`, `content-type` and `x-request-id`. */
  readonly allow_headers: readonly string[]
  /** Response headers scripts may read besides `x-request-id`. */
  readonly expose_headers: readonly string[]
}

const BASE_ALLOW_HEADERS = ['authorization', 'content-type', 'x-request-id']
// With the rate limit's headers (and Retry-After, not safelisted either), so a browser application can pace itself.
const BASE_EXPOSE_HEADERS = ['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after']

/** The policy of `route` (its `cors` block), else the deployment's (`KEYGATE_CORS_ORIGINS`); null when CORS is off. */
export function corsPolicyOf(route: Pick<Route, 'cors'> | undefined, defaultOrigins: readonly string[]): CorsPolicy | null {
  const policy = route?.cors ?? { origins: defaultOrigins, credentials: true, max_age_sec: 600, allow_headers: [], expose_headers: [] }
  return policy.origins.length ? policy : null
}

export type CorsOutcome = { answered: false } | { answered: true; routeName: string; code: ErrorCode | undefined }
const NOT_ANSWERED: CorsOutcome = Object.freeze({ answered: false })

/**
 * The CORS stage, before authentication. A preflight (`OPTIONS` with `Origin` and
 * `Access-Control-Request-Method`) to a route with a policy is answered here: 204 with the
 * `Access-Control-Allow-*` headers for an allowed origin, 403 CORS_ORIGIN_FORBIDDEN without any for another.
 * Any other request from an allowed origin gets `Access-Control-Allow-Origin` (its own origin, never `*`) on
 * whatever answers it, errors included; every answer of a route with a policy carries `Vary: Origin`.
 * Routes without a policy are left alone (their upstream may answer CORS itself).
 */
export function corsStage(defaultOrigins: readonly string[], router: () => Router) {
  // Whether any route of the current routes has a policy: without one (no KEYGATE_CORS_ORIGINS, no route's `cors`),
  // the stage has nothing to do and costs one comparison. Decided again when the routes are reloaded.
  let checked: Router | undefined
  let anyPolicy = false
  return function handle(req: IncomingMessage, res: ServerResponse, requestId: string): CorsOutcome {
    const routes = router()
    if (routes !== checked) {
      checked = routes
      anyPolicy = defaultOrigins.length > 0 || routes.routes.some((r) => r.cors)
    }
    if (!anyPolicy) return NOT_ANSWERED
    // A path admission refuses is refused there, without CORS headers.
    const normalized = normalizePath(req.url)
    if (!normalized.ok) return NOT_ANSWERED
    const path = normalized.path
    const origin = req.headers.origin
    const requested = req.headers['access-control-request-method']
    const preflight = req.method === 'OPTIONS' && typeof origin === 'string' && typeof requested === 'string'
    const route = routes.match(path, preflight ? requested : req.method ?? 'GET', req.headers.host)
    // A preflight for a method no route takes is left to the router's 404.
    const policy = preflight && !route ? null : corsPolicyOf(route, defaultOrigins)
    if (!policy) return NOT_ANSWERED
    res.setHeader('vary', 'Origin')
    const allowed = typeof origin === 'string' && policy.origins.includes(origin)
    if (!preflight) {
      if (allowed) {
        res.setHeader('access-control-allow-origin', origin)
        if (policy.credentials) res.setHeader('access-control-allow-credentials', 'true')
        res.setHeader('access-control-expose-headers', [...BASE_EXPOSE_HEADERS, ...policy.expose_headers].join(', '))
      }
      return NOT_ANSWERED
    }
    if (!allowed) {
      writeProblem(res, 'CORS_ORIGIN_FORBIDDEN', { instance: requestId, headers: { 'x-request-id': requestId } })
      return { answered: true, routeName: route!.name, code: 'CORS_ORIGIN_FORBIDDEN' }
    }
    res.writeHead(204, {
      'access-control-allow-origin': origin,
      ...(policy.credentials ? { 'access-control-allow-credentials': 'true' } : {}),
      'access-control-allow-methods': (route!.methods ?? [requested.toUpperCase()]).join(', '),
      'access-control-allow-headers': [...BASE_ALLOW_HEADERS, ...policy.allow_headers].join(', '),
      'access-control-max-age': String(policy.max_age_sec),
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      'x-request-id': requestId,
    })
    res.end()
    return { answered: true, routeName: route!.name, code: undefined }
  }
}

export type CorsStage = ReturnType<typeof corsStage>
