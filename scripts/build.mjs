// @ts-check
/**
 * `npm run build`: compiles the directories tsconfig.build.json includes into dist/ (`tsc`, relative `./x.ts`
 * imports rewritten to `./x.js`), copies every other file under them beside the output (the SQL migrations,
 * which core/migrate.ts reads next to itself), removes what a source that is gone left behind (a renamed
 * module's old output, a deleted migration), then writes the stamp dist/.build-stamp.
 *
 * `node scripts/build.mjs --if-stale` (prestart, and the pre-script of every script that runs compiled code)
 * builds only when the stamp is missing or older than a source file or a tsconfig, so `npm start` on a fresh
 * clone, or after a `git pull`, runs what the sources say; otherwise it does nothing, quietly.
 *
 * Plain JavaScript on purpose: it runs before anything is compiled, and without tsx.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CONFIG = 'tsconfig.build.json'
/**
 * The workspace package the compiled code imports (`@keygate/verify`): built first, by its own tsconfig.
 * tsconfig.build.json clears `paths`, so the gateway's build resolves it through node_modules to that build.
 */
const VERIFY_CONFIG = 'packages/verify/tsconfig.build.json'
const VERIFY_SOURCES = 'packages/verify/src'
const DIST = join(ROOT, 'dist')
export const STAMP = join(DIST, '.build-stamp')

/** @returns {string[]} the directories the build compiles, relative to ROOT */
function includedDirs() {
  return /** @type {{ include: string[] }} */ (JSON.parse(readFileSync(join(ROOT, CONFIG), 'utf8'))).include
}

/** @param {string} dir @returns {string[]} every file under `dir` (absolute paths) */
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

/** @returns {string[]} every file the build reads: the included directories and the tsconfigs */
function sources() {
  return [...[...includedDirs(), VERIFY_SOURCES].flatMap((d) => filesUnder(join(ROOT, d))), join(ROOT, 'tsconfig.json'), join(ROOT, CONFIG), join(ROOT, VERIFY_CONFIG)]
}

/** @returns {string | undefined} why dist/ must be built again, or undefined when it is up to date */
export function staleness() {
  if (!existsSync(STAMP)) return 'dist/ has not been built'
  const built = statSync(STAMP).mtimeMs
  const newer = sources().find((f) => statSync(f).mtimeMs > built)
  return newer ? `${relative(ROOT, newer)} changed since the last build` : undefined
}

export function build() {
  let tsc
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  } catch {
    throw new Error('the build needs the TypeScript compiler, a dev dependency: run `npm install` (without --omit=dev), then `npm run build`')
  }
  for (const config of [VERIFY_CONFIG, CONFIG]) {
    const result = spawnSync(process.execPath, [tsc, '-p', config], { cwd: ROOT, stdio: 'inherit' })
    if (result.status !== 0) throw new Error(`tsc -p ${config} failed (exit ${result.status ?? result.signal})`)
  }
  let assets = 0
  for (const file of includedDirs().flatMap((d) => filesUnder(join(ROOT, d)))) {
    if (file.endsWith('.ts') || file.endsWith('.mjs')) continue
    const target = join(DIST, relative(ROOT, file))
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(file, target)
    assets++
  }
  removeOrphans()
  writeFileSync(STAMP, `${new Date().toISOString()} node ${process.version}\n`)
  return assets
}

/**
 * Removes every file under dist/ whose source is gone: `x.js` / `x.d.ts` / `x.js.map` without `x.ts` (or
 * `x.mjs`), a copied file without its original. Files only, one by one, so a process running from dist/ while
 * it builds keeps every module that still has a source.
 */
export function removeOrphans() {
  for (const dir of includedDirs()) {
    const out = join(DIST, dir)
    if (!existsSync(out)) continue
    for (const file of filesUnder(out)) {
      const rel = relative(DIST, file)
      const stem = rel.replace(/(\.d\.ts|\.js\.map|\.js)$/, '')
      // A copied file has its original at the same path (a committed .js among them: the console's bundle).
      const sources = [rel, ...(stem !== rel ? [`${stem}.ts`, `${stem}.mjs`] : [])]
      if (!sources.some((f) => existsSync(join(ROOT, f)))) rmSync(file)
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    if (process.argv.includes('--if-stale')) {
      const why = staleness()
      if (why) {
        process.stderr.write(`keygate: building dist/ (${why})\n`)
        build()
      }
    } else {
      const assets = build()
      process.stdout.write(`built dist/ (${assets} other files copied)\n`)
    }
  } catch (err) {
    process.stderr.write(`keygate build: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
}
