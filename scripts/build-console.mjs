// @ts-check
/**
 * `npm run build:console`: bundles the key console's browser code (console/src, TypeScript) into one minified
 * ES module, admin-api/console/console.js, which is committed beside the page and style sheet it belongs to (the
 * admin API serves the three; `npm run build` copies them into dist/). `--check` writes nothing and fails when
 * the committed file differs from what the sources build to (test/console/bundle.test.ts runs it).
 *
 * Plain JavaScript, like scripts/build.mjs: it runs with Node alone (and esbuild, a dev dependency).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const ENTRY = 'console/src/main.ts'
export const OUT = 'admin-api/console/console.js'

/** @returns {Promise<string>} the bundle the sources build to */
export async function bundle() {
  const esbuild = await import('esbuild')
  const result = await esbuild.build({
    absWorkingDir: ROOT, entryPoints: [ENTRY], bundle: true, format: 'esm', target: ['es2022'], platform: 'browser',
    minify: true, legalComments: 'none', charset: 'utf8', write: false, logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const built = await bundle()
  if (process.argv.includes('--check')) {
    const committed = readFileSync(new URL(`../${OUT}`, import.meta.url), 'utf8')
    if (committed !== built) {
      process.stderr.write(`${OUT} is out of date with ${ENTRY}: run npm run build:console and commit it\n`)
      process.exit(1)
    }
  } else {
    writeFileSync(new URL(`../${OUT}`, import.meta.url), built)
    process.stdout.write(`${OUT}: ${built.length} bytes\n`)
  }
}
