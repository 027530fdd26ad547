import type { NextFunction, Request, Response } from 'express'
import { sendError } from './http.ts'

/**
 * The CSRF decision for the calls a browser makes with the refresh cookie (`/refresh`, which it authenticates)
 * or that set or clear it (`/login`, `/register`, `/logout`). The cookie is `SameSite=Strict`, which stops
 * other sites but not other origins of the same site (`https://evil.example.com` and
 * `https://keys.example.com`, or two ports of one host), so the browser's own statement of where the call
 * comes from decides:
 *
 * - `Origin` listed in KEYGATE_CORS_ORIGINS: allowed (a browser application the operator trusts);
 * - `Sec-Fetch-Site: same-origin` or `none` (the console, a typed URL): allowed;
 * - `Sec-Fetch-Site: same-site` or `cross-site`: 403 CROSS_SITE_REFUSED;
 * - no `Sec-Fetch-Site` (an older browser): allowed only when `Origin` is absent or is this service's own
 *   origin (scheme and `Host`, as the gateway forwarded them);
 * - neither header (curl, SDKs, servers): allowed. Existing non-browser clients are unaffected.
 *
 * The refused request changes nothing: it is answered before the handler runs.
 */
export function refuseCrossSite(trustedOrigins: readonly string[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (crossSite(req, trustedOrigins)) return sendError(res, 'CROSS_SITE_REFUSED')
    next()
  }
}

/** True when a browser says this request comes from a page of another origin that is not trusted. */
export function crossSite(req: Pick<Request, 'headers' | 'socket'>, trustedOrigins: readonly string[]): boolean {
  const origin = first(req.headers.origin)
  if (origin !== undefined && trustedOrigins.includes(origin)) return false
  const site = first(req.headers['sec-fetch-site'])?.toLowerCase()
  if (site !== undefined) return site !== 'same-origin' && site !== 'none'
  return origin !== undefined && origin !== ownOrigin(req)
}

/** This service's origin as the client addressed it: the gateway forwards its scheme and `Host`. */
function ownOrigin(req: Pick<Request, 'headers' | 'socket'>): string | undefined {
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host
  if (!host) return undefined
  const proto = first(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim() || ('encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http')
  return `${proto}://${host.split(',')[0]!.trim()}`
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)
