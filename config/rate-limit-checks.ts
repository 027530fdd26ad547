import type { RouteConfig } from './schema.ts'

/** What is wrong with a route's `rate_limit` beyond its fields' own ranges (each a sentence naming the fix). */
export function rateLimitProblems(r: RouteConfig): string[] {
  const rl = r.rate_limit
  if (!rl?.per) return []
  if (r.auth === 'public' && rl.per !== 'address') {
    return [`per: ${rl.per} on a public route, which reads no credential, would count every client in one bucket: write per: address (the default on public routes), or make the route auth: optional or required`]
  }
  return []
}
