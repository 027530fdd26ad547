import type { RouteConfig } from '../config/schema.ts'

/** A route with its upstream resolved to an origin. */
export interface Route extends RouteConfig {
  readonly origin: string
}

export interface Router {
  /** The route for a normalised path and method: the longest prefix that matches on whole segments. */
  match(path: string, method: string): Route | undefined
  readonly routes: readonly Route[]
}

function matchesPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  return path === p || (path.startsWith(p) && path[p.length] === '/')
}

export function createRouter(routes: readonly Route[]): Router {
  const ordered = [...routes].sort((a, b) => b.prefix.length - a.prefix.length)
  return {
    routes: ordered,
    match(path, method) {
      for (const r of ordered) {
        if (!matchesPrefix(path, r.prefix)) continue
        if (r.methods && !r.methods.includes(method as never)) continue
        return r
      }
      return undefined
    },
  }
}
