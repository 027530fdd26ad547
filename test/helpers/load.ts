import { Agent, request } from 'undici'

/** What one request of a load loop saw: its status (0 when it failed without one) and problem code. */
export interface Answer { status: number; code?: string; error?: string }

export interface LoadReport {
  sent: number
  /** Answers by status. */
  statuses: Record<number, number>
  /** Every answer that was not the expected one, with when it came (ms since the start). */
  failures: Array<Answer & { atMs: number; label: string }>
  /** The slowest answer, in ms. */
  maxMs: number
}

/**
 * `concurrency` closed loops, each sending one request at a time through `send(loop, i)` (i counts per loop)
 * until `stop()`, pausing `pauseMs` between two requests (a steady load that leaves the machine some room);
 * every answer is counted by status, and those other than `expect` are kept with their time.
 */
export function loadLoop(options: {
  concurrency: number
  send(loop: number, i: number): Promise<Answer & { label?: string }>
  expect?: number
  pauseMs?: number
}) {
  const started = performance.now()
  const report: LoadReport = { sent: 0, statuses: {}, failures: [], maxMs: 0 }
  let running = true
  const loops = Array.from({ length: options.concurrency }, async (_, loop) => {
    for (let i = 0; running; i++) {
      const t0 = performance.now()
      let answer: Answer & { label?: string }
      try {
        answer = await options.send(loop, i)
      } catch (err) {
        answer = { status: 0, error: String((err as Error)?.message ?? err) }
      }
      const ms = performance.now() - t0
      report.sent++
      report.maxMs = Math.max(report.maxMs, ms)
      report.statuses[answer.status] = (report.statuses[answer.status] ?? 0) + 1
      if (answer.status !== (options.expect ?? 200)) report.failures.push({ ...answer, label: answer.label ?? '', atMs: Math.round(t0 - started) })
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs))
    }
  })
  return {
    report,
    /** Lets every loop finish its request in flight, then resolves with the report. */
    async stop(): Promise<LoadReport> {
      running = false
      await Promise.all(loops)
      return report
    },
  }
}

/** A keep-alive client for load loops (its own pool, closed by `close()`). */
export function loadClient() {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 })
  return {
    /** GET `url` with `Authorization: Bearer token`; the status and, for a problem answer, its code. */
    async get(url: string, token?: string, timeoutMs = 15_000): Promise<Answer> {
      const res = await request(url, {
        dispatcher: agent,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      const text = await res.body.text()
      return { status: res.statusCode, code: res.statusCode === 200 ? undefined : /"code":"([A-Z_]+)"/.exec(text)?.[1] }
    },
    close: () => agent.close(),
  }
}
