import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { load, type LoadResult } from './load.ts'

/**
 * `npm run bench`: the overhead of Keygate over the direct path, side by side in one run. Starts a minimal
 * upstream (~200-byte JSON) in this process, Keygate as a child process on the embedded database in front
 * of it, then drives direct, API key (warm cache) and JWT paths in interleaved rounds with the built-in
 * closed-loop generator (`bench/load.ts`). Prints a markdown table and writes it under bench/results/.
 * BENCH_CONNECTIONS (50), BENCH_SECONDS (5 per round), BENCH_ROUNDS (2).
 */
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const body = JSON.stringify({ id: 'c1', title: 'hello', items: Array.from({ length: 8 }, (_, i) => ({ n: i, ok: true })) }).slice(0, 200)

async function main() {
  const upstream = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  const upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-'))
  const config = join(dir, 'keygate.yaml')
  writeFileSync(config, `upstreams:\n  admin: { url: "internal:admin" }\n  bench: { url: "${upstreamOrigin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }\n  - { name: auth, prefix: /api/v1/auth, upstream: admin }\n  - { name: bench, prefix: /bench, upstream: bench }\n`)
  const port = 18000 + Math.floor(Math.random() * 1000)
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: '0', KEYGATE_DATA_DIR: join(dir, 'data'), KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', LOG_LEVEL: 'warn', KEYGATE_BOOTSTRAP_USERNAME: 'bench', KEYGATE_BOOTSTRAP_PASSWORD: 'bench password' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const origin = `http://127.0.0.1:${port}`
  try {
    for (let i = 0; ; i++) {
      if (await fetch(`${origin}/healthz`).then((r) => r.ok, () => false)) break
      if (i > 100) throw new Error('keygate did not start')
      await new Promise((r) => setTimeout(r, 200))
    }
    const login = (await (await fetch(`${origin}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bench', password: 'bench password' }) })).json()) as { access_token: string }
    const jwt = login.access_token
    const key = ((await (await fetch(`${origin}/api/v1/auth/api-key`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` }, body: JSON.stringify({ name: 'bench' }) })).json()) as { api_key: string }).api_key

    const scenarios: Record<string, () => Promise<LoadResult>> = {
      direct: () => load({ origin: upstreamOrigin, path: '/bench', connections, durationMs: seconds * 1000 }),
      'keygate, API key (warm)': () => load({ origin, path: '/bench', headers: () => ({ authorization: `Bearer ${key}` }), connections, durationMs: seconds * 1000 }),
      'keygate, JWT': () => load({ origin, path: '/bench', headers: () => ({ authorization: `Bearer ${jwt}` }), connections, durationMs: seconds * 1000 }),
    }
    // Warm-up, then interleaved rounds so drift hits every candidate alike.
    for (const run of Object.values(scenarios)) await load({ origin: origin, path: '/healthz', connections: 4, durationMs: 300 }).then(run)
    const results = new Map<string, LoadResult[]>()
    for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(scenarios)) results.set(name, [...(results.get(name) ?? []), await run()])

    const best = (name: string) => results.get(name)!.reduce((a, b) => (b.rps > a.rps ? b : a))
    const direct = best('direct')
    const lines = [
      `| path | req/s | p50 ms | p99 ms | max ms | errors | × direct |`,
      `|---|---:|---:|---:|---:|---:|---:|`,
      ...[...results.keys()].map((name) => {
        const b = best(name)
        const errors = results.get(name)!.reduce((n, x) => n + x.errors, 0)
        return `| ${name} | ${b.rps.toFixed(0)} | ${b.p50.toFixed(2)} | ${b.p99.toFixed(2)} | ${b.max.toFixed(1)} | ${errors} | ${(b.rps / direct.rps).toFixed(2)} |`
      }),
    ]
    const header = `Keygate benchmark, ${new Date().toISOString()}, node ${process.version}, ${connections} connections, best of ${rounds} × ${seconds}s rounds`
    const table = `${header}\n\n${lines.join('\n')}\n`
    process.stdout.write(table)
    mkdirSync('bench/results', { recursive: true })
    writeFileSync(`bench/results/gateway-${new Date().toISOString().slice(0, 10)}.md`, table)
  } finally {
    child.kill('SIGTERM')
    upstream.close()
    await new Promise((r) => setTimeout(r, 500))
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
