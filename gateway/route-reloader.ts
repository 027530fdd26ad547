import { readFileSync } from 'node:fs'
import { parseFileConfig } from '../config/load.ts'
import type { Cleanups } from '../core/cleanups.ts'
import { watchFiles } from '../core/file-watch.ts'
import type { Logger } from '../core/logger.ts'
import type { Metrics } from '../core/metrics.ts'
import { resolveRoutes, type Route } from './router.ts'

/**
 * Reloads the route file without a restart: on demand (SIGHUP, see the entry point) and, with `watch`, when
 * the file changes. A file that cannot be read or is invalid is refused and the previous routes keep serving;
 * a valid one is handed to `apply`.
 *
 * The watch sees the file replaced (editors write a new file and rename it over the old one), edited through
 * a symbolic link, and a Kubernetes ConfigMap update: the kubelet writes the new files into a new directory
 * and swaps the volume's `..data` link to it, so the file's own name never appears in an event.
 */
export function routeReloader(deps: {
  filePath: string
  /** The environment, for the variables the route file may name. */
  rawEnv: NodeJS.ProcessEnv
  /** Addresses of the in-process services (`internal:<name>` upstreams). */
  internal: ReadonlyMap<string, string>
  apply(routes: Route[]): void
  logger: Logger
  watch: boolean
  cleanups: Cleanups
  /** Reloads by result and the time of the last good load (set here at start, then on every success). */
  metrics?: Pick<Metrics, 'routeReloads' | 'routesLoadedAt'>
  now?: () => number
}): { reload(trigger: string): boolean } {
  const { filePath, logger, metrics } = deps
  const now = deps.now ?? Date.now
  metrics?.routesLoadedAt.set(now() / 1000)
  const refused = (trigger: string, problems: readonly string[]) => {
    metrics?.routeReloads.inc({ result: 'failure' })
    logger.error('route reload failed; the previous routes keep serving', { trigger, problems })
    return false
  }
  /** The text of the routes in force: a change event whose file reads the same reloads nothing. */
  let current: string | undefined
  try {
    current = readFileSync(filePath, 'utf8')
  } catch {
    // The entry point read it a moment ago; the first change event will say what is wrong.
  }
  const reload = (trigger: string, text?: string): boolean => {
    if (text === undefined) {
      try {
        text = readFileSync(filePath, 'utf8')
      } catch (err) {
        return refused(trigger, [`${filePath}: cannot read (${(err as NodeJS.ErrnoException).code})`])
      }
    }
    const parsed = parseFileConfig(text, filePath, deps.rawEnv)
    const next = parsed.config ? resolveRoutes(parsed.config, filePath, deps.internal) : { problems: parsed.problems }
    if (!next.routes) return refused(trigger, next.problems)
    deps.apply(next.routes)
    current = text
    metrics?.routeReloads.inc({ result: 'success' })
    metrics?.routesLoadedAt.set(now() / 1000)
    logger.info('routes reloaded', { trigger, routes: next.routes.length })
    return true
  }
  if (deps.watch) {
    // Watched through links (a replaced file, the `..data` swap, an edit through a link): any change, debounced,
    // rereads the file (see core/file-watch.ts).
    const watching = watchFiles([filePath], {
      debounceMs: 100,
      onChange: () => {
        let text: string
        try {
          text = readFileSync(filePath, 'utf8')
        } catch (err) {
          refused('file change', [`${filePath}: cannot read (${(err as NodeJS.ErrnoException).code})`])
          return
        }
        if (text !== current) reload('file change', text)
      },
      onWatchError: (dir, error) => logger.warn('cannot watch the route file\'s directory; SIGHUP still reloads', { dir, error }),
    })
    deps.cleanups.unshift(async () => watching.close())
  }
  return { reload: (trigger: string) => reload(trigger) }
}
