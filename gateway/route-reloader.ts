import { readFileSync, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import { parseFileConfig } from '../config/load.ts'
import type { Cleanups } from '../core/cleanups.ts'
import type { Logger } from '../core/logger.ts'
import { resolveRoutes, type Route } from './router.ts'

/**
 * Reloads the route file without a restart: on demand (SIGHUP, see the entry point) and, with `watch`, when
 * the file changes. A file that cannot be read or is invalid is refused and the previous routes keep serving;
 * a valid one is handed to `apply`.
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
}): { reload(trigger: string): boolean } {
  const { filePath, logger } = deps
  const refused = (trigger: string, problems: readonly string[]) => {
    logger.error('route reload failed; the previous routes keep serving', { trigger, problems })
    return false
  }
  const reload = (trigger: string): boolean => {
    let text: string
    try {
      text = readFileSync(filePath, 'utf8')
    } catch (err) {
      return refused(trigger, [`${filePath}: cannot read (${(err as NodeJS.ErrnoException).code})`])
    }
    const parsed = parseFileConfig(text, filePath, deps.rawEnv)
    const next = parsed.config ? resolveRoutes(parsed.config, filePath, deps.internal) : { problems: parsed.problems }
    if (!next.routes) return refused(trigger, next.problems)
    deps.apply(next.routes)
    logger.info('routes reloaded', { trigger, routes: next.routes.length })
    return true
  }
  if (deps.watch) {
    // Editors replace files rather than write them in place: watch the directory, debounce, then reload.
    const file = basename(filePath)
    let debounce: NodeJS.Timeout | undefined
    const watcher = watch(dirname(filePath), (_event, name) => {
      if (name !== file) return
      clearTimeout(debounce)
      debounce = setTimeout(() => reload('file change'), 100)
    })
    deps.cleanups.unshift(async () => { clearTimeout(debounce); watcher.close() })
  }
  return { reload }
}
