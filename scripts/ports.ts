import { createServer } from 'node:net'

/**
 * Loopback ports for the processes the tests and the benchmarks start, chosen below Linux's ephemeral range
 * (32768–60999 by default), where the kernel never places the local end of an outgoing connection: a port the
 * kernel hands out for `listen(0)` could be taken, between the probe and the process's own `listen`, by any of
 * the connections the parallel test files (or a benchmark's load) open.
 */
const LOW = 10_000
const HIGH = 32_767
/** Ports this process handed out already: two calls never get the same one. */
const given = new Set<number>()

function tryListen(port: number): Promise<boolean> {
  const s = createServer()
  return new Promise((resolve) => {
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/**
 * A loopback port nobody listens on right now, for processes that must know each other's address before they
 * start (a gateway's admin URL, the admin API's key set URL). Another test could pick the same one in between
 * (one chance in some twenty thousand per pair); no outgoing connection can.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1))
    if (given.has(port)) continue
    given.add(port)
    if (await tryListen(port)) return port
  }
  throw new Error(`no free port on 127.0.0.1 between ${LOW} and ${HIGH} after 200 tries`)
}
