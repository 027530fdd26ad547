import type { RouteConfig } from './schema.ts'
import { rateLimitProblems } from './rate-limit-checks.ts'

/**
 * Mistakes no single route shows, found across the route table: a prefix under the gateway's reserved
 * `/_keygate/`, a prefix written as a pattern (`/billing/*`: prefixes are literal), and a route that can never match because a route with the same prefix is tried
 * first and accepts every request it would. A shorter prefix never hides a longer one: the longest wins.
 * @param where names a route's field for a problem: `FILE routes[i].FIELD (route "NAME")`
 */
export function routeTableProblems(routes: readonly RouteConfig[], where: (index: number, field: string) => string): string[] {
  const problems: string[] = []
  routes.forEach((r, i) => {
    if (/^\/_keygate(\/|$)/i.test(r.prefix)) {
      problems.push(`${where(i, 'prefix')}: "${r.prefix}" is under /_keygate/, which the gateway reserves for its own endpoints (the decision endpoint /_keygate/decide): no route can serve it`)
    }
    if (r.prefix.includes('*')) {
      const literal = r.prefix.replace(/\/?[^/]*\*.*$/, '') || '/'
      problems.push(`${where(i, 'prefix')}: "${r.prefix}" looks like a pattern, but a prefix is matched literally, on whole path segments: write "${literal}" to match ${literal} and everything under it`)
    }
    problems.push(...rateLimitProblems(r).map((p) => `${where(i, 'rate_limit')}: ${p}`))
  })
  const tried = routes.map((r, i) => ({ r, i })).sort((a, b) => triedBefore(a.r, b.r) || a.i - b.i)
  tried.forEach(({ r: later, i }, position) => {
    const first = tried.slice(0, position).find(({ r }) => samePaths(r, later) && takesAll(r, later))
    if (!first) return
    problems.push(`${where(i, 'prefix')}: never matches: route "${first.r.name}" (routes[${first.i}]) has the same prefix "${trimSlash(later.prefix)}", is tried first, and accepts every method and host this route accepts`)
  })
  return problems
}

const trimSlash = (prefix: string) => (prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)

/** The router's order: the longer prefix first; among equal lengths, a route with a `host` first; then file order. */
function triedBefore(a: RouteConfig, b: RouteConfig): number {
  return trimSlash(b.prefix).length - trimSlash(a.prefix).length || Number(b.host !== undefined) - Number(a.host !== undefined)
}

/**
 * Whether every path `later`'s prefix matches is matched by `first`'s too: prefixes match case-insensitively
 * unless a route says `case_sensitive`, so `/Billing` takes every path of `/billing`, but a case-sensitive
 * `/billing` leaves `/BILLING` to a case-insensitive route of the same prefix.
 */
function samePaths(first: RouteConfig, later: RouteConfig): boolean {
  const [a, b] = [trimSlash(first.prefix), trimSlash(later.prefix)]
  return first.case_sensitive ? later.case_sensitive && a === b : a.toLowerCase() === b.toLowerCase()
}

/** Whether `first` accepts every method and host that `later` does. */
function takesAll(first: RouteConfig, later: RouteConfig): boolean {
  const methods = !first.methods || (later.methods !== undefined && later.methods.every((m) => first.methods!.includes(m)))
  const host = first.host === undefined || (later.host !== undefined && (first.host === later.host || (first.host.startsWith('*.') && later.host.endsWith(first.host.slice(1)))))
  return methods && host
}
