import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Node 24 for the second section of `npm run bench`: the npm registry's `node` package, installed into
 * `dir` (as .ci/run installs it for the tests) unless it is there already. Its binary runs the gateways, the
 * bare proxy and the stack rows of that section; the load generator and the upstream stay as they are.
 */
export const NODE24_DIR = '/tmp/keygate-bench-node24'

export function node24(dir = NODE24_DIR): { path: string; version: string } | { skipped: string } {
  if (process.version.startsWith('v24.')) return { skipped: `this run is on Node ${process.version} already` }
  const bin = join(dir, 'node_modules', '.bin', 'node')
  const version = () => spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  if (!existsSync(bin) || !version().startsWith('v24.')) {
    process.stderr.write(`bench: installing Node 24 (npm's node@24) into ${dir}…\n`)
    const r = spawnSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', 'node@24'], { stdio: ['ignore', 'ignore', 'inherit'] })
    if (r.status !== 0) return { skipped: `npm install --prefix ${dir} node@24 failed (exit ${r.status})` }
  }
  const v = version()
  return v.startsWith('v24.') ? { path: bin, version: v } : { skipped: `${bin} is ${v || 'not runnable'}, not Node 24` }
}
