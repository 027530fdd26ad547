import type { IncomingMessage } from 'node:http'
import type { ErrorCode } from '../core/error-codes.ts'
import type { Metrics } from '../core/metrics.ts'
import { KeygateError } from '../core/errors.ts'
import type { AuthResult, Authenticator, Principal } from './authenticator.ts'
import type { ForwardedPolicy } from './forwarded-headers.ts'
import { upstreamPath, type Route, type Router } from './router.ts'
import { authenticatorFor, withinScopes } from './stage-authenticate.ts'
import { extractCredential, type CredentialResult } from './stage-credential.ts'
import { normalizePath } from './stage-path.ts'
import { sanitizeRequestHeaders, type StripList } from './stage-sanitize.ts'
import type { IdentityStamper } from './stage-sign-identity.ts'
import type { RateLimitOutcome, RateLimitStage } from './stage-rate-limit.ts'

/**
 * Admission: whether a request may go upstream, and as whom, decided once for every transport (the HTTP
 * pipeline, WebSocket upgrades, and a decision endpoint that answers an ingress):
 *   path → credential → route → [the transport's route check] → authenticate (and scopes)
 *   → rate limit                                                                               `admit`
 *   sanitize → forwarded → identity                                                           `headers`
 * The transport calls `admit`, does what is its own between the two (the body limit of the HTTP pipeline),
 * then takes the headers the upstream gets from `headers`. Denials are values with a code, and so is a fault
 * that has one (a store that is down: `KeygateError`); any other fault throws.
 */
export interface AdmissionDeps {
  /** The current routes (a function, so a reload swaps them without restarting). */
  router: () => Router
  authenticators: readonly Authenticator[]
  stamper: IdentityStamper
  identityHeader: string
  /** Client headers dropped besides the reserved families (`KEYGATE_STRIP_HEADERS`). */
  stripHeaders?: StripList
  forwarded: ForwardedPolicy
  metrics: Pick<Metrics, 'authFailures'>
  /** Rate limits and quotas, counted after authentication (see `stage-rate-limit.ts`). */
  rateLimit?: RateLimitStage
}

export interface Admitted {
  readonly ok: true
  readonly router: Router
  readonly route: Route
  readonly method: string
  /** The normalised path and the query (`?…` or empty). */
  readonly path: string
  readonly search: string
  readonly credential: CredentialResult
  /** Null on a public route, or an optional one without a credential. */
  readonly principal: Principal | null
  /** Headers for the client's answer (the rate limit's), `[name, value, …]`; absent when there are none. */
  readonly responseHeaders?: readonly string[]
}

/** A refusal; `route` is set when the request got that far (for the access line and metrics). */
export type Refused = {
  readonly ok: false
  readonly code: ErrorCode
  readonly route: Route | undefined
  /** With METHOD_NOT_ALLOWED: the methods the routes serving this path accept (the `Allow` header). */
  readonly allow?: readonly string[]
  /** The id of a key that exists but was refused (revoked, expired), for the access line. */
  readonly keyId?: string
  /** Headers of the refusal (RATE_LIMITED: Retry-After and the rate limit's). */
  readonly headers?: Readonly<Record<string, string>>
  /** Who was refused, when the refusal came after authentication (RATE_LIMITED), for the access line. */
  readonly principal?: Principal
}

/**
 * What a transport checks once the route is known, before any credential is looked at (a route that takes no
 * WebSocket, a route with no free slot): a code to refuse with, or undefined. `context` is the transport's own
 * (the HTTP response, to give a slot back when it closes).
 */
export type RouteCheck<C> = (route: Route, context: C) => ErrorCode | undefined

/**
 * The request admission decides on, when it is not `req` itself: the decision endpoint (`decide.ts`) admits the
 * request an ingress describes in its headers (the original target and Host), with `req`'s credential.
 */
export interface AdmissionTarget {
  readonly url: string | undefined
  readonly host: string | undefined
}

export interface Admission {
  /**
   * Decides on the request: synchronously when nothing needs I/O (a public route, a credential the in-process
   * cache holds, a rate limit counted in-process or on a lease held here), else a promise. Throws (or rejects
   * with) a fault without a code.
   */
  admit<C>(req: IncomingMessage, method: string, check: RouteCheck<C> | undefined, context: C, target?: AdmissionTarget): Admitted | Refused | Promise<Admitted | Refused>
  /** The identity headers for the upstream (the signed assertion, the plain ones when the route wants them); none without a principal. */
  identity(admitted: Admitted): string[]
  /** The request headers for the upstream, as a flat name/value list: sanitised, forwarded, identity signed. */
  headers(req: IncomingMessage, admitted: Admitted, requestId: string): string[]
}

/** What admission knows of a request once its route is found, carried through authentication and the rate limit. */
interface Routed extends Pick<Admitted, 'router' | 'route' | 'method' | 'path' | 'search' | 'credential'> {
  readonly req: IncomingMessage
}

export function createAdmission(deps: AdmissionDeps): Admission {
  const refused = (code: ErrorCode, route?: Route): Refused => ({ ok: false, code, route })
  return {
    admit(req, method, check, context, target) {
      const path = normalizePath(target ? target.url : req.url)
      if (!path.ok) return refused(path.code)
      // The gateway's own endpoints (`/_keygate/…`) are never an upstream's, in any spelling that normalises to them.
      if (isReservedPath(path.path)) return refused('ROUTE_NOT_FOUND')
      const host = target ? target.host : req.headers.host
      const credential = extractCredential(req)
      const router = deps.router()
      const route = router.match(path.path, method, host)
      if (!route) {
        // A path some route serves, asked with a method none of them accepts: 405 with what they accept.
        const allow = router.allowedMethods(path.path, host)
        return allow.length ? { ok: false, code: 'METHOD_NOT_ALLOWED', route: undefined, allow } : refused('ROUTE_NOT_FOUND')
      }
      const denial = check?.(route, context)
      if (denial) return refused(denial, route)
      const request: Routed = { req, router, route, method, path: path.path, search: path.search, credential }
      // Stage 4 inline: a credential the in-process cache holds is decided without a promise, so a warm request is
      // admitted synchronously; a lookup is the one promise, and a rate limit counted in a store the other (not
      // while this instance holds a lease of it).
      const decided = authenticatorFor(route, credential, deps.authenticators)
      if (!('authenticate' in decided)) {
        if (decided.ok) return limit(request, null)
        deps.metrics.authFailures.inc({ code: decided.code })
        return refused(decided.code, route)
      }
      let result: AuthResult | Promise<AuthResult>
      try {
        result = decided.authenticate((credential as { value: string }).value, { clientAddress: () => deps.forwarded.clientAddress(req) })
      } catch (err) {
        return faulted(err, route)
      }
      if (result instanceof Promise) return result.then((r) => authenticated(request, r), (err: unknown) => faulted(err, route))
      return authenticated(request, result)
    },

    headers(req, admitted, requestId) {
      const headers = sanitizeRequestHeaders(req, { identityHeader: deps.identityHeader, forwardAuthorization: admitted.route.forward_authorization, strip: deps.stripHeaders })
      headers.push('x-request-id', requestId)
      const forwarded = deps.forwarded.headers(req, admitted.route.internal)
      for (let i = 0; i < forwarded.length; i++) headers.push(forwarded[i]!)
      if (admitted.principal) pushIdentity(headers, admitted, admitted.principal)
      return headers
    },

    identity(admitted) {
      const out: string[] = []
      if (admitted.principal) pushIdentity(out, admitted, admitted.principal)
      return out
    },
  }

  /** A fault with its code (the store is down: 503) is answered as such, on this route; others go up. */
  function faulted(err: unknown, route: Route): Refused {
    if (err instanceof KeygateError) return refused(err.code, route)
    throw err
  }

  /** After authentication: the route's scopes, then the rate limit. */
  function authenticated(request: Routed, result: AuthResult): Admitted | Refused | Promise<Admitted | Refused> {
    const { route } = request
    const code = !result.ok ? result.code : withinScopes(route, result.principal) ? undefined : 'INSUFFICIENT_SCOPE'
    if (code) {
      deps.metrics.authFailures.inc({ code })
      return !result.ok && result.keyId !== undefined ? { ok: false, code, route, keyId: result.keyId } : refused(code, route)
    }
    return limit(request, (result as { principal: Principal }).principal)
  }

  function limit(request: Routed, principal: Principal | null): Admitted | Refused | Promise<Admitted | Refused> {
    const { req, route } = request
    const limited = deps.rateLimit?.(route, principal, () => deps.forwarded.clientAddress(req))
    if (!limited) return admitted(request, principal, undefined)
    // Counted without I/O (in-process, or on a lease this instance holds): decided synchronously, as a warm
    // credential is.
    if (limited instanceof Promise) return limited.then((outcome) => limitedBy(request, principal, outcome))
    return limitedBy(request, principal, limited)
  }

  function limitedBy(request: Routed, principal: Principal | null, outcome: RateLimitOutcome): Admitted | Refused {
    if (!outcome.ok) return { ok: false, code: outcome.code, route: request.route, headers: outcome.headers, principal: principal ?? undefined }
    return admitted(request, principal, outcome.headers.length ? outcome.headers : undefined)
  }

  function admitted(request: Routed, principal: Principal | null, responseHeaders: readonly string[] | undefined): Admitted {
    const { router, route, method, path, search, credential } = request
    return responseHeaders
      ? { ok: true, router, route, method, path, search, credential, principal, responseHeaders }
      : { ok: true, router, route, method, path, search, credential, principal }
  }

  /** Appends the identity headers to `out`, in place: no array of their own per request. */
  function pushIdentity(out: string[], admitted: Admitted, principal: Principal): void {
    const { route } = admitted
    out.push(deps.identityHeader, deps.stamper.stamp(principal, route.audience, route.bind_request ? { method: admitted.method, prefix: upstreamPath(route, route.prefix) } : undefined))
    if (route.plain_identity_headers) {
      out.push('x-user-id', principal.userId, 'x-username', principal.username, 'x-auth-method', principal.auth)
      if (principal.keyId) out.push('x-api-key-id', principal.keyId)
    }
  }
}

/** The prefix of the gateway's own endpoints on its port (`/_keygate/decide`): never routed upstream. */
export const RESERVED_PREFIX = '/_keygate'

/** Whether a normalised path is the reserved prefix or under it, in any case. */
export function isReservedPath(path: string): boolean {
  // Almost every path's second character is not `_`: one comparison, no lowercasing.
  if (path.charCodeAt(1) !== 95) return false
  const lower = path.slice(0, RESERVED_PREFIX.length + 1).toLowerCase()
  return lower === RESERVED_PREFIX || lower === `${RESERVED_PREFIX}/`
}
