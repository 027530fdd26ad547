import { Pool } from 'undici'

/** Result of one load run: throughput, latency percentiles (ms) and errors. */
export interface LoadResult { requests: number; errors: number; rps: number; p50: number; p99: number; max: number }

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/**
 * A closed-loop load generator: `connections` keep-alive connections, each sending its next request as soon
 * as the previous answer arrived, for `durationMs`, or until `requests` were sent. Any status other than
 * `expect` counts as an error.
 */
export async function load(options: { origin: string; path: string; headers?: (i: number) => Record<string, string>; connections: number; durationMs: number; requests?: number; expect?: number }): Promise<LoadResult> {
  const pool = new Pool(options.origin, { connections: options.connections, pipelining: 1 })
  const latencies: number[] = []
  let errors = 0
  let n = 0
  const end = performance.now() + options.durationMs
  const count = options.requests ?? Infinity
  async function worker() {
    while (n < count && performance.now() < end) {
      const i = n++
      const started = performance.now()
      try {
        const res = await pool.request({ path: options.path, method: 'GET', headers: options.headers?.(i) })
        await res.body.dump()
        if (res.statusCode !== (options.expect ?? 200)) errors++
      } catch {
        errors++
      }
      latencies.push(performance.now() - started)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: options.connections }, worker))
  const elapsed = performance.now() - t0
  await pool.close()
  const sorted = Float64Array.from(latencies).sort()
  return { requests: latencies.length, errors, rps: latencies.length / (elapsed / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 }
}
