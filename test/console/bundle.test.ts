import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'

/**
 * The console's script is committed built (admin-api/console/console.js), so `npm ci` and a Docker build need no
 * front-end step; these checks fail when it no longer matches its sources, or the page reaches outside its origin.
 */
const run = promisify(execFile)

t.test('the committed console bundle is what console/src builds to', async (t) => {
  const res = await run(process.execPath, ['scripts/build-console.mjs', '--check']).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err)
  t.equal(res.code, 0, res.stderr || 'up to date (otherwise: npm run build:console)')
})

t.test('the console type-checks against the DOM on its own', async (t) => {
  const res = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'console']).then(() => ({ code: 0, stdout: '' }), (err: { code: number; stdout: string }) => err)
  t.equal(res.code, 0, res.stdout || 'tsc -p console')
})

t.test('the page loads nothing from another origin and nothing inline', async (t) => {
  const html = readFileSync('admin-api/console/index.html', 'utf8')
  const js = readFileSync('admin-api/console/console.js', 'utf8')
  const css = readFileSync('admin-api/console/console.css', 'utf8')
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'no external script, style or link in the page')
  t.notMatch(css, /url\(|@import/, 'the style sheet fetches nothing')
  t.notMatch(js, /localStorage|sessionStorage|indexedDB|document\.cookie/, 'the script never touches the page\'s storage or cookies')
  t.notMatch(js, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'nor parses strings as HTML')
  t.ok(js.length < 64 * 1024, `the script is small (${js.length} bytes)`)
})
