import type { Clock } from '../../core/clock.ts'
import { keygateOnPostgres } from './keygate.ts'
import { echoRouteFile, echoServer } from './upstreams.ts'

/**
 * A gateway on the local PostgreSQL (a schema of its own) in front of an echo upstream that records what it
 * received, with the admin API's routes (login public, the rest behind a credential) and `routes` (YAML route
 * lines naming the upstream `echo`). Both are closed, and the schema dropped, when `t` ends.
 */
export async function echoGateway(t: { teardown(fn: () => unknown): void }, label: string, options: { routes: string; env?: Record<string, string>; clock?: Clock }) {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const config = echoRouteFile(echo.origin, options.routes)
  const kg = await keygateOnPostgres(label, { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', ...options.env }, undefined, options.clock)
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  return { echo, kg, config }
}
