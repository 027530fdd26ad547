import { Agent, type Dispatcher } from 'undici'
import type { Route } from './router.ts'
import type { UpstreamTls } from '../config/upstream-tls.ts'

/**
 * Connection pools of upstreams with their own TLS settings (`upstream-tls.ts`): one undici Agent per distinct
 * set of files, made on first use. After a reload, pools no route uses any more close once their exchanges end.
 */
export interface UpstreamDispatchers {
  /** The pool of a route with TLS settings (undefined for a route without: the shared pool serves it). */
  for(route: Route): Dispatcher | undefined
  /** Closes the pools that none of `routes` uses (after a reload). */
  retain(routes: readonly Route[]): void
  destroy(): Promise<void>
}

export function upstreamDispatchers(options: { keepAliveTimeout: number; connections: number }): UpstreamDispatchers {
  const agents = new Map<string, Agent>()
  const make = (tls: UpstreamTls) => new Agent({ keepAliveTimeout: options.keepAliveTimeout, connections: options.connections, connect: { ca: tls.ca, cert: tls.cert, key: tls.key } })
  return {
    for(route) {
      const tls = route.tls
      if (!tls) return undefined
      let agent = agents.get(tls.id)
      if (!agent) agents.set(tls.id, (agent = make(tls)))
      return agent
    },
    retain(routes) {
      const used = new Set(routes.map((r) => r.tls?.id))
      for (const [id, agent] of agents) {
        if (used.has(id)) continue
        agents.delete(id)
        void agent.close().catch(() => undefined)
      }
    },
    async destroy() {
      await Promise.all([...agents.values()].map((a) => a.destroy().catch(() => undefined)))
      agents.clear()
    },
  }
}
