import { watch, realpathSync, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'

export interface FileWatch {
  close(): void
}

/**
 * Watches files the way Kubernetes replaces them: the directory of each path as configured (a replaced file, a
 * ConfigMap's or Secret's `..data` swap) and the directory each resolves to (an edit through a link). Any event
 * there, debounced by `debounceMs` (a change often writes several files), calls `onChange`; the watched set
 * follows the links when they move, so the next swap is seen too. A directory that cannot be watched is reported
 * to `onWatchError` and left out; one that is deleted (the previous ConfigMap version) ends its watcher.
 */
export function watchFiles(files: readonly string[], options: { debounceMs: number; onChange(): void; onWatchError(dir: string, code: string): void }): FileWatch {
  const watchers = new Map<string, FSWatcher>()
  let debounce: NodeJS.Timeout | undefined
  const changed = () => {
    clearTimeout(debounce)
    debounce = setTimeout(() => {
      arm()
      options.onChange()
    }, options.debounceMs)
  }
  const arm = () => {
    const dirs = new Set<string>()
    for (const file of files) {
      dirs.add(dirname(file))
      try {
        dirs.add(dirname(realpathSync(file)))
      } catch {
        // Missing for a moment (a swap in progress): the configured directory is still watched.
      }
    }
    for (const [dir, watcher] of watchers) {
      if (!dirs.has(dir)) { watcher.close(); watchers.delete(dir) }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue
      try {
        const watcher = watch(dir, changed)
        watcher.on('error', () => { watcher.close(); watchers.delete(dir) })
        watchers.set(dir, watcher)
      } catch (err) {
        options.onWatchError(dir, (err as NodeJS.ErrnoException).code ?? String(err))
      }
    }
  }
  arm()
  return {
    close() {
      clearTimeout(debounce)
      for (const watcher of watchers.values()) watcher.close()
      watchers.clear()
    },
  }
}
