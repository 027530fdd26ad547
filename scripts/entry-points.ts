import { fileURLToPath } from 'node:url'

/**
 * Every process Keygate ships, named once, and the two ways to run one:
 *
 * - `compiled` (production): `node dist/gateway/main.js`, the output of `npm run build`. `npm start`,
 *   `npm run admin-api`, `npm run keygate`, the demos, `npm run fleet`, the Dockerfile, docker-compose.yml,
 *   deploy/kubernetes and the tests' process helpers (test/helpers/compiled.ts) run this.
 * - `source` (development): `node --import tsx gateway/main.ts`, the TypeScript as it is, through tsx (a dev
 *   dependency). `npm run dev` runs this.
 *
 * Paths are relative to the repository root (`ROOT`), the working directory every process expects (the route
 * file `config/keygate.yaml` is found from there). `test/docs/compose.test.ts` and `test/docs/kubernetes.test.ts`
 * hold package.json's scripts, the Dockerfile, docker-compose.yml and the manifests to this table.
 */
export const ENTRY_POINTS = {
  gateway: { file: 'gateway/main.ts', args: [], script: 'start' },
  'admin-api': { file: 'admin-api/main.ts', args: [], script: 'admin-api' },
  cli: { file: 'cli/keygate.ts', args: [], script: 'keygate' },
  'demo-conversations': { file: 'examples/main.ts', args: ['conversations'], script: 'demo:conversations' },
  'demo-documents': { file: 'examples/main.ts', args: ['documents'], script: 'demo:documents' },
  fleet: { file: 'scripts/fleet.ts', args: [], script: 'fleet' },
} as const satisfies Record<string, { file: string; args: readonly string[]; script: string }>

export type EntryName = keyof typeof ENTRY_POINTS
export type Runtime = 'compiled' | 'source'

/** Where `npm run build` writes, relative to ROOT. */
export const DIST = 'dist'

/** How this module itself runs: compiled code starts compiled processes, sources start sources. */
export const RUNTIME: Runtime = import.meta.url.endsWith('.ts') ? 'source' : 'compiled'

/** The repository root (this file is `scripts/entry-points.ts`, or `dist/scripts/entry-points.js` once built). */
export const ROOT = fileURLToPath(new URL(RUNTIME === 'source' ? '..' : '../..', import.meta.url))

/** The file node runs for a source file: `gateway/main.ts` itself, or `dist/gateway/main.js`. */
export function runnableFile(file: string, runtime: Runtime = RUNTIME): string {
  return runtime === 'source' ? file : `${DIST}/${file.replace(/\.ts$/, '.js')}`
}

/** node's arguments (after `node`) that run `file` with `args`: `['dist/x.js', …]` or `['--import', 'tsx', 'x.ts', …]`. */
export function nodeArgs(file: string, args: readonly string[] = [], runtime: Runtime = RUNTIME): string[] {
  return [...(runtime === 'source' ? ['--import', 'tsx'] : []), runnableFile(file, runtime), ...args]
}

/** node's arguments that start the entry point `name`; spawn them with `process.execPath` and `cwd: ROOT`. */
export function entryArgs(name: EntryName, runtime: Runtime = RUNTIME): string[] {
  const e = ENTRY_POINTS[name]
  return nodeArgs(e.file, e.args, runtime)
}

/** The whole command, as a Dockerfile CMD or a package.json script writes it: `node dist/gateway/main.js`. */
export function entryCommand(name: EntryName, runtime: Runtime = RUNTIME): string[] {
  return ['node', ...entryArgs(name, runtime)]
}
