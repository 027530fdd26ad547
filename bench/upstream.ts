import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** 181 bytes of JSON: what the bench's upstream answers to every request. */
export const UPSTREAM_BODY = JSON.stringify({ id: 'c1', title: 'hello', items: Array.from({ length: 8 }, (_, i) => ({ n: i, ok: true })) })

/**
 * The benchmarks' upstream: Node `http` in the bench's own process, answering every request with `UPSTREAM_BODY`.
 * `lastHeaders()` is the raw header list of the last request it got (what a proxy in front sent it).
 */
export async function startUpstream(): Promise<{ origin: string; close(): void; lastHeaders(): readonly string[] }> {
  let last: readonly string[] = []
  const server = createServer((req, res) => {
    last = req.rawHeaders
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(UPSTREAM_BODY) })
    res.end(UPSTREAM_BODY)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close(), lastHeaders: () => last }
}
