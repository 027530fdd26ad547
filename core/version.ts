import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Keygate's version: `version` of the package.json named `keygate` in the first directory above this file that
 * has one, so the sources (`core/`) and a compiled build (`dist/core/`) read the same file.
 */
function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'keygate' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // no package.json here: look further up
    }
    const up = dirname(dir)
    if (up === dir) return 'unknown'
    dir = up
  }
}

/** Printed by `keygate --version`, answered by `/healthz`, logged in the gateway's listening line. */
export const VERSION = readVersion()
