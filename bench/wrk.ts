import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load, type LoadResult } from './load.ts'
import { ensureBinary } from './system.ts'

/**
 * The load generator: `wrk` (Debian's package) when it can be had, otherwise the built-in closed-loop generator
 * of `load.ts` (same model: N keep-alive connections, each sending its next request when the last answered,
 * but it costs more CPU on a machine whose cores the gateway shares). A run names its path and either one
 * bearer credential or a file of them, one per line, used in turn, a different one on every request.
 */
export interface LoadSpec { origin: string; path: string; bearer?: string; bearerFile?: string; bearers?: readonly string[]; connections: number; seconds: number }

export interface LoadGenerator { readonly name: string; run(spec: LoadSpec): Promise<LoadResult> }

// Summary as one JSON line: wrk's own text report rounds latencies to two digits.
const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

const ROTATE = (file: string) => `
local bearers = {}
for line in io.lines("${file}") do bearers[#bearers + 1] = line end
local i = 0
request = function()
  i = i % #bearers + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. bearers[i] })
end
`

/** @param dir where the Lua scripts are written. */
export function loadGenerator(dir: string): LoadGenerator {
  const wrk = ensureBinary('wrk', 'wrk')
  if (!wrk.path) {
    process.stderr.write(`bench: ${wrk.why}; using the built-in generator (bench/load.ts) instead\n`)
    return {
      name: 'bench/load.ts (wrk unavailable)',
      run: (s) => load({
        origin: s.origin, path: s.path, connections: s.connections, durationMs: s.seconds * 1000,
        headers: s.bearers ? (i) => ({ authorization: `Bearer ${s.bearers![i % s.bearers!.length]}` }) : s.bearer ? () => ({ authorization: `Bearer ${s.bearer}` }) : undefined,
      }),
    }
  }
  const summary = join(dir, 'summary.lua')
  writeFileSync(summary, DONE)
  let scripts = 0
  return {
    name: 'wrk 4.1 (1 thread)',
    async run(s) {
      let script = summary
      if (s.bearerFile) {
        script = join(dir, `rotate-${scripts++}.lua`)
        writeFileSync(script, ROTATE(s.bearerFile) + DONE)
      }
      // One thread: it keeps 50 connections busy at well over nginx's rate here, and leaves the other core's
      // time to the gateway.
      const args = ['-t1', `-c${s.connections}`, `-d${s.seconds}s`, '--timeout', '5s', '-s', script]
      if (s.bearer) args.push('-H', `Authorization: Bearer ${s.bearer}`)
      args.push(s.origin + s.path)
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(wrk.path!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        let text = ''
        child.stdout.on('data', (d: Buffer) => { text += d.toString() })
        child.stderr.on('data', (d: Buffer) => { text += d.toString() })
        child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))))
      })
      const m = /WRK_RESULT (\{.*\})/.exec(out)
      if (!m) throw new Error(`wrk printed no summary: ${out}`)
      const r = JSON.parse(m[1]!) as { requests: number; duration_us: number; errors: number; status_errors: number; p50_us: number; p99_us: number; max_us: number }
      return {
        requests: r.requests,
        errors: r.errors + r.status_errors,
        rps: r.requests / (r.duration_us / 1e6),
        p50: r.p50_us / 1000,
        p99: r.p99_us / 1000,
        max: r.max_us / 1000,
      }
    },
  }
}
