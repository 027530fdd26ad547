import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Runtime } from '../scripts/entry-points.ts'
import { startKeygateProcess } from './spawn.ts'

/**
 * `npm run bench:upload`: streams one large upload (BENCH_UPLOAD_MB, default 1024) through a (compiled) Keygate process
 * to an upstream that hashes and discards it, and samples the gateway's resident memory (VmRSS, Linux) every
 * 20 ms. Prints the baseline RSS after a warm-up upload, the peak during the big one, their difference, the
 * throughput, and whether the SHA-256 seen by the upstream equals the client's. The tests run a smaller one.
 */
export interface UploadMemoryResult {
  bytes: number
  seconds: number
  baselineRssBytes: number
  peakRssBytes: number
  growthBytes: number
  clientSha256: string
  upstreamSha256: string
  upstreamBytes: number
  status: number
}

const ROUTES = (upstreamPort: number) => `upstreams:
  admin:
    url: internal:admin
  sink:
    url: http://127.0.0.1:${upstreamPort}
routes:
  - name: auth-login
    prefix: /api/v1/auth/login
    methods: [POST]
    upstream: admin
    auth: public
  - name: auth
    prefix: /api/v1/auth
    upstream: admin
  - name: upload
    prefix: /upload
    upstream: sink
    max_body_bytes: 4294967296
    timeout_ms: 600000
`

/** An upstream that hashes every body it receives and answers with its size and SHA-256. */
function sink(): Promise<Server> {
  const server = createServer((req, res) => {
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (c: Buffer) => { bytes += c.length; hash.update(c) })
    req.on('end', () => res.setHeader('content-type', 'application/json').end(JSON.stringify({ bytes, sha256: hash.digest('hex') })))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kb) * 1024
}

/** Streams `bytes` of pseudo-random data (a 1 MiB random block, rotated) with Content-Length, never holding more than one block. */
function upload(url: string, token: string, bytes: number): Promise<{ status: number; body: any; sha256: string }> {
  const block = randomBytes(1024 * 1024)
  const hash = createHash('sha256')
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes) } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => { text += d }).on('end', () => {
        try { resolve({ status: res.statusCode!, body: JSON.parse(text), sha256: hash.digest('hex') }) } catch (err) { reject(err) }
      })
    })
    req.on('error', reject)
    let sent = 0
    let turn = 0
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(block.length, bytes - sent)
        const rot = turn++ % block.length
        const chunk = Buffer.concat([block.subarray(rot), block.subarray(0, rot)]).subarray(0, n)
        hash.update(chunk)
        sent += n
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      req.end()
    }
    pump()
  })
}

export async function measureUpload(bytes: number, runtime: Runtime = 'compiled'): Promise<UploadMemoryResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-upload-'))
  const upstream = await sink()
  writeFileSync(join(dir, 'routes.yaml'), ROUTES((upstream.address() as AddressInfo).port))
  const gateway = await startKeygateProcess({
    PORT: '0', HOST: '127.0.0.1', METRICS_PORT: '0', KEYGATE_DEMOS: 'false',
    KEYGATE_DATA_DIR: join(dir, 'data'), KEYGATE_CONFIG: join(dir, 'routes.yaml'), KEYGATE_CONFIG_WATCH: 'false',
    KEYGATE_BOOTSTRAP_USERNAME: 'bench', KEYGATE_BOOTSTRAP_EMAIL: 'bench@example.com', KEYGATE_BOOTSTRAP_PASSWORD: 'bench password', KEYGATE_PASSWORD_HASH_LOG_N: '14',
  }, runtime)
  try {
    const post = async (path: string, body: unknown, token?: string) => {
      const res = await fetch(gateway.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
      return (await res.json()) as any
    }
    const jwt = (await post('/api/v1/auth/login', { username: 'bench', password: 'bench password' })).access_token
    const key = (await post('/api/v1/auth/api-key', { name: 'upload bench' }, jwt)).api_key as string
    // Warm-up: the first upload loads code paths and buffers that any later one reuses.
    await upload(`${gateway.url}/upload`, key, 32 * 1024 * 1024)
    await new Promise((r) => setTimeout(r, 200))
    const baselineRssBytes = rssOf(gateway.pid)
    let peakRssBytes = baselineRssBytes
    const sampler = setInterval(() => { peakRssBytes = Math.max(peakRssBytes, rssOf(gateway.pid)) }, 20)
    const started = performance.now()
    const res = await upload(`${gateway.url}/upload`, key, bytes).finally(() => clearInterval(sampler))
    const seconds = (performance.now() - started) / 1000
    peakRssBytes = Math.max(peakRssBytes, rssOf(gateway.pid))
    return {
      bytes, seconds, baselineRssBytes, peakRssBytes, growthBytes: peakRssBytes - baselineRssBytes,
      clientSha256: res.sha256, upstreamSha256: res.body?.sha256, upstreamBytes: res.body?.bytes, status: res.status,
    }
  } finally {
    await gateway.stop()
    await new Promise((r) => upstream.close(r))
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const mb = Number(process.env.BENCH_UPLOAD_MB ?? 1024)
  const r = await measureUpload(mb * 1024 * 1024)
  const MB = (n: number) => (n / 1024 / 1024).toFixed(1)
  const text = [
    `Upload through Keygate, ${new Date().toISOString()}, ${mb} MiB with Content-Length, one process, embedded database`,
    ``,
    `| status | seconds | MiB/s | baseline RSS MiB | peak RSS MiB | growth MiB | SHA-256 equal |`,
    `|---|---|---|---|---|---|---|`,
    `| ${r.status} | ${r.seconds.toFixed(2)} | ${(mb / r.seconds).toFixed(0)} | ${MB(r.baselineRssBytes)} | ${MB(r.peakRssBytes)} | ${MB(r.growthBytes)} | ${r.clientSha256 === r.upstreamSha256 && r.upstreamBytes === r.bytes} |`,
    ``,
  ].join('\n')
  process.stdout.write(text)
  mkdirSync(new URL('results/', import.meta.url), { recursive: true })
  writeFileSync(new URL(`results/upload-memory-${new Date().toISOString().slice(0, 10)}.md`, import.meta.url), text)
}
