import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Clock } from '../core/clock.ts'
import type { ErrorCode } from '../core/error-codes.ts'
import { KeygateError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { writeProblem } from '../core/problem.ts'
import type { Admission, AdmissionTarget } from './admission.ts'
import type { Principal } from './authenticator.ts'
import type { ForwardedPolicy } from './forwarded-headers.ts'
import { requestIdOf } from './pipeline.ts'

/**
 * The forward-auth decision endpoint, `/_keygate/decide` on the gateway port: an ingress (nginx `auth_request`,
 * Caddy `forward_auth`, Traefik ForwardAuth, Envoy's HTTP ext_authz) asks whether the request it holds may go
 * upstream, and as whom. The answer comes from the same admission as the proxy's (`admission.ts`): 200 with the
 * signed identity header (and the plain ones when the route wants them) for the ingress to copy upstream, or
 * the problem answer the proxy would give (401 with `WWW-Authenticate`, 403, 404, 405, 503).
 *
 * The original request is read from exactly one of:
 *   - `X-Original-URI` + `X-Original-Method` (nginx), Host from `X-Forwarded-Host` or `Host`; or
 *     `X-Original-URL` (absolute, its authority the Host) + `X-Original-Method` (Kubernetes ingress-nginx);
 *   - `X-Forwarded-Uri` + `X-Forwarded-Method` (Caddy, Traefik), Host likewise;
 *   - the path after `/_keygate/decide` and the request's own method and Host (Envoy's `path_prefix`).
 * Only a peer in KEYGATE_TRUSTED_PROXIES is answered at all (403 DECISION_PEER_UNTRUSTED): anyone else could
 * state any request it likes and collect signed identities. Two sources at once, a repeated header, a method
 * that is not A-Z, or a method override header (which the ingress would pass to the upstream, where the proxy
 * drops it) is 400 DECISION_REQUEST_INVALID.
 *
 * An allowing answer may be cached by the ingress for `cacheSec` (`X-Accel-Expires` as an absolute time, see
 * `accelExpires`; `Cache-Control: private, max-age`), never beyond half the identity's lifetime (the assertion is reused up to half its lifetime, so one
 * taken from the ingress's cache is still valid) nor past the credential's own deadline. Denials never are.
 *
 * What the proxy does past admission is the ingress's own in this mode: body limits, timeouts, `max_concurrent`,
 * `websockets` (an ingress does not pass `Upgrade` to its auth request), prefix stripping, CORS, cutting open
 * streams at a revocation.
 */
export const DECIDE_PATH = '/_keygate/decide'

export interface DecisionDeps {
  admission: Admission
  /** KEYGATE_IDENTITY_HEADER. */
  identityHeader: string
  forwarded: Pick<ForwardedPolicy, 'trustedPeer'>
  /** KEYGATE_DECISION_CACHE_SEC. */
  cacheSec: number
  /** The identity assertion's lifetime, seconds (the current signer's). */
  identityTtlSec: () => number
  clock: Clock
  metrics: Pick<Metrics, 'decisions'>
  logger: Logger
}

type Original = { ok: true; method: string; target: AdmissionTarget } | { ok: false; detail: string }

const METHOD = /^[A-Z]{1,32}$/
/** The plain identity headers of routes with `plain_identity_headers`, stated (empty or not) in every allowing answer. */
export const PLAIN_HEADERS = ['x-user-id', 'x-username', 'x-auth-method', 'x-api-key-id'] as const
const METHOD_OVERRIDE = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])
const NGINX = ['x-original-uri', 'x-original-method'] as const
const FORWARDED = ['x-forwarded-uri', 'x-forwarded-method'] as const
/** ingress-nginx's `auth-url` states the whole URL (`$scheme://$http_host$request_uri`), not the URI. */
const ORIGINAL_URL = 'x-original-url'
const WATCHED = new Set<string>([...NGINX, ...FORWARDED, ORIGINAL_URL, 'x-forwarded-host'])
/** An absolute URL split without normalising anything: the target is judged exactly as the ingress received it. */
const ABSOLUTE = /^https?:\/\/([^/?#\s]+)([/?][^\s]*)?$/i

/**
 * The headers the decision reads, each with how often it came (Node joins repeated unknown headers with ", ",
 * so repetition shows only in the raw list), and whether a method override header came in any spelling.
 */
function readHeaders(req: IncomingMessage): { values: Map<string, string[]>; override: boolean } {
  const values = new Map<string, string[]>()
  let override = false
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (WATCHED.has(name)) {
      const list = values.get(name)
      if (list) list.push(raw[i + 1]!)
      else values.set(name, [raw[i + 1]!])
    } else if (METHOD_OVERRIDE.has(name.replaceAll('_', '-'))) {
      override = true
    }
  }
  return { values, override }
}

/** The request the ingress describes, or why it cannot be read. */
export function originalRequest(req: IncomingMessage): Original {
  const { values, override } = readHeaders(req)
  if (override) return { ok: false, detail: 'The original request carries a method override header (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override), which the ingress would pass to the upstream; it is refused in decision mode' }
  for (const [name, list] of values) if (list.length > 1) return { ok: false, detail: `The decision request repeats ${name}` }
  const get = (name: string) => values.get(name)?.[0]
  const url = req.url ?? ''
  const suffix = url.length > DECIDE_PATH.length && url[DECIDE_PATH.length] === '/' ? url.slice(DECIDE_PATH.length) : undefined
  const nginx = NGINX.some((n) => values.has(n)) || values.has(ORIGINAL_URL)
  const sources = [suffix !== undefined, nginx, FORWARDED.some((n) => values.has(n))].filter(Boolean).length
  if (sources === 0) return { ok: false, detail: 'The decision request does not state the original request: send X-Original-URI (or X-Original-URL) and X-Original-Method (nginx), X-Forwarded-Uri and X-Forwarded-Method (Caddy, Traefik), or ask /_keygate/decide/<original path> (Envoy)' }
  if (sources > 1 || (values.has(ORIGINAL_URL) && values.has(NGINX[0]))) return { ok: false, detail: 'The decision request states the original request in more than one way (X-Original-URI, X-Original-URL, X-Forwarded-Uri, a path under /_keygate/decide/): the ingress must clear the headers it does not set' }
  if (suffix !== undefined) {
    // Envoy's ext_authz: the original method and Host are the request's own.
    return { ok: true, method: req.method ?? 'GET', target: { url: suffix, host: req.headers.host } }
  }
  const [uriName, methodName] = nginx ? (values.has(ORIGINAL_URL) ? [ORIGINAL_URL, NGINX[1]] : NGINX) : FORWARDED
  let uri = get(uriName)
  const method = get(methodName)
  if (uri === undefined || method === undefined) return { ok: false, detail: `The decision request must carry both ${uriName} and ${methodName}` }
  if (!METHOD.test(method)) return { ok: false, detail: `${methodName} must be an HTTP method in capital letters A-Z` }
  let host = get('x-forwarded-host') ?? req.headers.host
  if (uriName === ORIGINAL_URL) {
    const absolute = ABSOLUTE.exec(uri)
    if (!absolute) return { ok: false, detail: 'X-Original-URL must be an absolute http(s) URL' }
    host = absolute[1]
    uri = absolute[2] === undefined ? '/' : absolute[2][0] === '?' ? `/${absolute[2]}` : absolute[2]
  }
  return { ok: true, method, target: { url: uri, host } }
}

/** Seconds an ingress may keep an allowing decision: the setting, within the identity's half-life and the credential's deadline. */
export function decisionCacheSeconds(cacheSec: number, identityTtlSec: number, principal: Principal | null, now: number): number {
  let n = Math.min(cacheSec, Math.floor(identityTtlSec / 2))
  if (principal?.validUntil !== undefined) n = Math.min(n, Math.floor((principal.validUntil - now) / 1000))
  return Math.max(0, n)
}

/**
 * `X-Accel-Expires` for a decision cacheable for `seconds` from `now` (ms): nginx counts whole seconds and
 * serves an entry through the whole second it expires in, so a relative `N` could serve it almost N + 1 s.
 * The absolute form names the last whole second in which the entry may be served, so that it is gone by
 * now + N: kept between N - 1 and N seconds. 0 (not cached) when nothing is cacheable.
 */
export function accelExpires(seconds: number, now: number): string {
  return seconds > 0 ? `@${Math.floor(now / 1000) + seconds - 1}` : '0'
}

export function createDecision(deps: DecisionDeps) {
  const { admission, logger, metrics } = deps

  return async function decide(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const requestId = requestIdOf(req)
    // The decision request has no body of its own; whatever an ingress sends along is not read.
    req.resume()
    let routeName = 'none'
    let method: string | undefined
    let principal: Principal | null = null
    let code: ErrorCode | undefined
    let cacheSec: number | undefined
    const deny = (c: ErrorCode, detail?: string, headers: Readonly<Record<string, string>> = {}) => {
      code = c
      writeProblem(res, c, { detail, instance: requestId, headers: { 'x-request-id': requestId, 'x-accel-expires': '0', ...headers } })
    }
    try {
      if (!deps.forwarded.trustedPeer(req)) return deny('DECISION_PEER_UNTRUSTED')
      const original = originalRequest(req)
      if (!original.ok) return deny('DECISION_REQUEST_INVALID', original.detail)
      method = original.method
      const admitting = admission.admit(req, original.method, undefined, undefined, original.target)
      const admitted = admitting instanceof Promise ? await admitting : admitting
      if (!admitted.ok) {
        if (admitted.route) routeName = admitted.route.name
        if (admitted.principal) principal = admitted.principal
        return deny(admitted.code, undefined, admitted.allow ? { allow: admitted.allow.join(', ') } : admitted.headers)
      }
      routeName = admitted.route.name
      principal = admitted.principal
      const now = deps.clock.now()
      // A rate-limited request is never cacheable: the ingress would pass the cached requests uncounted.
      cacheSec = admitted.responseHeaders ? 0 : decisionCacheSeconds(deps.cacheSec, deps.identityTtlSec(), principal, now)
      const headers = admission.identity(admitted)
      // Every identity header is stated, empty when the request gets none (a public route, a route without
      // plain headers): an ingress that copies a header the answer lacks may set something else (Caddy 2.6
      // sets its placeholder's text), and one that copies an empty value clears the client's copy.
      for (const name of [deps.identityHeader, ...PLAIN_HEADERS]) if (!headers.includes(name)) headers.push(name, '')
      headers.push(
        'x-request-id', requestId,
        'x-accel-expires', accelExpires(cacheSec, now),
        'cache-control', cacheSec > 0 ? `private, max-age=${cacheSec}` : 'no-store',
        'content-length', '0',
      )
      if (admitted.responseHeaders) headers.push(...admitted.responseHeaders)
      res.writeHead(200, headers)
      res.end()
    } catch (err) {
      const c: ErrorCode = err instanceof KeygateError ? err.code : 'INTERNAL'
      if (c === 'INTERNAL') logger.error('decision failed', { request_id: requestId, error: String((err as Error)?.message ?? err) })
      deny(c)
    } finally {
      metrics.decisions.inc({ route: routeName, code: code ?? 'ok' })
      logger.info('decision', {
        request_id: requestId,
        route: routeName,
        method,
        status: res.headersSent ? res.statusCode : 0,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        auth: principal?.auth ?? 'none',
        user_id: principal?.userId,
        key_id: principal?.keyId,
        cache_sec: cacheSec,
        code,
      })
    }
  }
}
