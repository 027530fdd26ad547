import { readFileSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, type Dispatcher } from 'undici'

/**
 * The floor under any Node gateway: a reverse proxy with nothing but Node's HTTP server and undici's dispatch,
 * as Keygate's forward stage uses them (no credential, no signing, no log, no metrics). The benchmark runs it
 * beside Keygate so that the table separates what Node's HTTP costs on this machine from what Keygate adds.
 * Usage: `tsx bench/bare-proxy.ts <upstream origin> [headers.json]`; prints its URL once it listens. With a
 * headers file (a flat `[name, value, …]` JSON list), every upstream request carries exactly those headers instead
 * of `x-forwarded-for` alone: `npm run bench:profile` gives it the headers Keygate sent upstream, to tell what
 * carrying them costs Node and undici from what Keygate's own work costs.
 */
class Relay {
  private resume: (() => void) | undefined
  constructor(private readonly res: ServerResponse) {}
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true
    this.resume = resume
    const headers: string[] = []
    for (let i = 0; i < raw.length; i += 2) headers.push(raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1'))
    this.res.writeHead(status, headers)
    return true
  }
  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true
    this.res.once('drain', this.resume!)
    return false
  }
  onComplete(): void {
    this.res.end()
  }
  onError(): void {
    this.res.destroy()
  }
}

const origin = process.argv[2]!
const fixedHeaders = process.argv[3] ? (JSON.parse(readFileSync(process.argv[3], 'utf8')) as string[]) : undefined
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
const server = createServer((req, res) => {
  req.resume()
  agent.dispatch({ origin, path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: fixedHeaders ?? ['x-forwarded-for', req.socket.remoteAddress ?? ''] }, new Relay(res) as unknown as Dispatcher.DispatchHandler)
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`))
process.once('SIGTERM', () => process.exit(0))
