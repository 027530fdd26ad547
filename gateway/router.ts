import { dirname } from 'node:path'
import { METHODS, routeSchema, type FileConfig, type RouteConfig } from '../config/schema.ts'
import { readUpstreamTls, type UpstreamTls } from '../config/upstream-tls.ts'

/** A route ready to serve: its upstream resolved to origins, its audience decided. */
export interface Route extends RouteConfig {
  readonly origins: readonly string[]
  readonly audience: string
  /**
   * Every origin is a service Keygate runs in-process (`internal:<name>`): only such an upstream gets the client
   * address with its proof (`x-keygate-client-address-proof`). Any other upstream could replay a proof it saw to
   * the in-process admin API's loopback port, as that client, for as long as the proof is fresh.
   */
  readonly internal: boolean
  /** The upstream's own TLS settings (private CA, client certificate), read from its files; absent: the system's CAs. */
  readonly tls?: UpstreamTls
}

export interface Router {
  /**
   * The route for a normalised path, method and Host header: the longest prefix that matches on whole
   * segments; among equal prefixes, one with a matching `host` before one without. Prefixes match
   * case-insensitively unless the route sets `case_sensitive`. A path whose segments carry `;` parameters is
   * matched with them and without them (servlet containers drop them, Express keeps them) and the stricter of
   * the two routes wins, so no upstream can serve a request as a better-protected route than it was admitted by.
   */
  match(path: string, method: string, host?: string): Route | undefined
  /**
   * The methods some route accepts for this path and Host header, in the file schema's order: what a request
   * that `match` refused for its method may use instead (the `Allow` of a 405). Empty when no route's prefix
   * and host match at all.
   */
  allowedMethods(path: string, host?: string): string[]
  /** The next origin of the route, in turn. */
  origin(route: Route): string
  readonly routes: readonly Route[]
}

function trimSlash(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
}

function matchesPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true
  const p = trimSlash(prefix)
  return path === p || (path.startsWith(p) && path[p.length] === '/')
}

/**
 * The path without the `;parameters` of each segment (`/a;x/b;y=1` → `/a/b`), as a servlet container reads it;
 * a segment that was only parameters leaves an empty one, which collapses (`/a/;x/b` → `/a/b`).
 */
export function withoutPathParameters(path: string): string {
  return path.replace(/;[^/]*/g, '').replace(/\/{2,}/g, '/')
}

const AUTH_RANK = { public: 0, optional: 1, required: 2 } as const

/** The better-protected of two routes: the stricter auth mode, then more scopes; `a` when they are equal. */
function stricter(a: Route | undefined, b: Route | undefined): Route | undefined {
  if (!a || !b || a === b) return a ?? b
  const rank = AUTH_RANK[b.auth] - AUTH_RANK[a.auth] || b.scopes.length - a.scopes.length
  return rank > 0 ? b : a
}

function matchesHost(pattern: string | undefined, hostHeader: string | undefined): boolean {
  if (pattern === undefined) return true
  if (!hostHeader) return false
  const host = hostHeader.replace(/:\d+$/, '').toLowerCase()
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern
}

/** The path the upstream receives: the prefix stripped or rewritten when the route says so. */
export function upstreamPath(route: RouteConfig, path: string): string {
  if (!route.strip_prefix && route.rewrite_prefix === undefined) return path
  const prefix = trimSlash(route.prefix)
  const rest = prefix === '/' ? path : path.slice(prefix.length)
  const base = route.strip_prefix ? '' : trimSlash(route.rewrite_prefix!)
  const joined = (base === '/' ? '' : base) + rest
  return joined.startsWith('/') ? joined : `/${joined}`
}

export function createRouter(routes: readonly Route[]): Router {
  // By the prefix's length without its trailing slash: `/api/` and `/api` match the same paths, so file order decides.
  const ordered = [...routes].sort((a, b) => trimSlash(b.prefix).length - trimSlash(a.prefix).length || Number(b.host !== undefined) - Number(a.host !== undefined))
  // Express, Rails, ASP.NET and Windows file systems route case-insensitively: a case-sensitive gateway would let
  // `/Secret` past the route of `/secret` to one that upstream serves as `/secret`.
  const prefixes = new Map(ordered.map((r) => [r, r.case_sensitive ? r.prefix : r.prefix.toLowerCase()]))
  const turn = new Map<string, number>()
  function find(path: string, method: string, host: string | undefined): Route | undefined {
    const lower = path.toLowerCase()
    for (const r of ordered) {
      if (!matchesPrefix(r.case_sensitive ? path : lower, prefixes.get(r)!)) continue
      if (r.methods && !r.methods.includes(method as never)) continue
      if (!matchesHost(r.host, host)) continue
      return r
    }
    return undefined
  }
  return {
    routes: ordered,
    match(path, method, host) {
      const route = find(path, method, host)
      return path.includes(';') ? stricter(route, find(withoutPathParameters(path), method, host)) : route
    },
    allowedMethods(path, host) {
      const allowed = new Set<string>()
      for (const p of path.includes(';') ? [path, withoutPathParameters(path)] : [path]) {
        const lower = p.toLowerCase()
        for (const r of ordered) {
          if (matchesPrefix(r.case_sensitive ? p : lower, prefixes.get(r)!) && matchesHost(r.host, host)) for (const m of r.methods ?? METHODS) allowed.add(m)
        }
      }
      return METHODS.filter((m) => allowed.has(m))
    },
    origin(route) {
      if (route.origins.length === 1) return route.origins[0]!
      const i = turn.get(route.name) ?? 0
      turn.set(route.name, (i + 1) % route.origins.length)
      return route.origins[i % route.origins.length]!
    },
  }
}

/**
 * Resolves the file's routes: upstream names to origins (`internal:<name>` through `internal`), the audience
 * to the upstream name unless set. Returns the problems instead when an upstream cannot be resolved.
 */
export function resolveRoutes(file: FileConfig, filePath: string, internal: ReadonlyMap<string, string>): { routes?: Route[]; problems: string[] } {
  const problems: string[] = []
  const tlsOf = new Map<string, UpstreamTls | undefined>()
  for (const [name, upstream] of Object.entries(file.upstreams)) {
    const read = readUpstreamTls(upstream, dirname(filePath))
    for (const problem of read.problems) problems.push(`${filePath} upstreams.${name}.${problem}`)
    tlsOf.set(name, read.tls)
  }
  const routes = file.routes.map((r, i) => {
    const urls = ([] as string[]).concat(file.upstreams[r.upstream]!.url)
    const origins = urls.map((url) => {
      const origin = url.startsWith('internal:') ? internal.get(url.slice('internal:'.length)) : url.replace(/\/$/, '')
      if (!origin) problems.push(`${filePath} routes[${i}]: upstream "${r.upstream}" is ${url}, which is not running (unknown service, or KEYGATE_DEMOS=false)`)
      return origin ?? ''
    })
    const tls = tlsOf.get(r.upstream)
    const internalOnly = urls.every((url) => url.startsWith('internal:'))
    return tls ? { ...r, origins, audience: r.audience ?? r.upstream, internal: internalOnly, tls } : { ...r, origins, audience: r.audience ?? r.upstream, internal: internalOnly }
  })
  return problems.length ? { problems } : { routes, problems }
}

/** A route from partial settings, with the file's defaults (tests and tools). */
export function routeWithDefaults(r: Partial<RouteConfig> & Pick<RouteConfig, 'name' | 'prefix' | 'upstream'>, origins: string[] = ['http://127.0.0.1:1'], internal = false): Route {
  const parsed = routeSchema.parse(r)
  return { ...parsed, origins, audience: parsed.audience ?? parsed.upstream, internal }
}
