import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import pg from 'pg'
import { startKeygateProcess } from './spawn.ts'
import { BENCH_DATABASE_URL, BENCH_REDIS_URL } from './fixtures.ts'

/**
 * `npm run bench:revocation`: how long a revocation takes to reach another instance. Two Keygate processes A
 * and B share the local PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL; BENCH_TRANSPORT=redis|pg).
 * B is kept busy by a closed loop over every key; then 200 keys are revoked through A one by one, and for each
 * a client of B asks until B refuses it. Prints p50/p99/max of revocation → first refusal, as B's clients see it.
 */
const N = Number(process.env.BENCH_KEYS ?? 200)
const databaseUrl = BENCH_DATABASE_URL
const redisUrl = BENCH_REDIS_URL
const transport = process.env.BENCH_TRANSPORT ?? 'redis'

async function json(url: string, init: RequestInit & { token?: string; body?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  const res = await fetch(url, { ...init, headers })
  return { status: res.status, body: (await res.json().catch(() => null)) as any }
}

async function main() {
  const schema = `kg_bench_${randomBytes(4).toString('hex')}`
  const prefix = `kgbench:${randomBytes(4).toString('hex')}:`
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, PORT: '0', METRICS_PORT: '0', KEYGATE_DEMOS: 'true',
    KEYGATE_MAX_KEYS_PER_USER: String(N + 10), KEYGATE_BOOTSTRAP_USERNAME: 'bench', KEYGATE_BOOTSTRAP_EMAIL: 'bench@example.com', KEYGATE_BOOTSTRAP_PASSWORD: 'bench password',
    KEYGATE_PASSWORD_HASH_LOG_N: '14', KEYGATE_REDIS_PREFIX: prefix,
    ...(transport === 'redis' ? { REDIS_URL: redisUrl } : {}),
  }
  const a = await startKeygateProcess(env)
  const b = await startKeygateProcess(env)
  try {
    const jwt = (await json(`${a.url}/api/v1/auth/login`, { method: 'POST', body: JSON.stringify({ username: 'bench', password: 'bench password' }) })).body.access_token
    const keys: Array<{ id: string; api_key: string }> = []
    for (let i = 0; i < N; i++) keys.push((await json(`${a.url}/api/v1/auth/api-key`, { method: 'POST', token: jwt, body: JSON.stringify({ name: `k${i}` }) })).body)
    for (const k of keys) await json(`${b.url}/api/v1/conversations`, { token: k.api_key })

    let running = true
    const background = (async () => {
      let i = 0
      while (running) await fetch(`${b.url}/api/v1/conversations`, { headers: { authorization: `Bearer ${keys[i++ % keys.length]!.api_key}` } }).then((r) => r.arrayBuffer()).catch(() => {})
    })()
    const delays: number[] = []
    for (const k of keys) {
      const revoked = await json(`${a.url}/api/v1/auth/api-keys/${k.id}`, { method: 'DELETE', token: jwt })
      if (revoked.status !== 200) throw new Error(`revoke failed: ${revoked.status}`)
      const t0 = performance.now()
      for (;;) {
        const res = await fetch(`${b.url}/api/v1/conversations`, { headers: { authorization: `Bearer ${k.api_key}` } })
        await res.arrayBuffer()
        if (res.status === 401) break
        if (performance.now() - t0 > 5000) throw new Error('a revocation did not reach B within 5 s')
      }
      delays.push(performance.now() - t0)
    }
    running = false
    await background
    delays.sort((x, y) => x - y)
    const pct = (p: number) => delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]!.toFixed(2)
    const table = [
      `Revocation propagation, ${new Date().toISOString()}, transport ${transport}, ${N} keys revoked through A while B serves load`,
      '',
      '| measured from the revoke call\'s answer to B\'s first refusal | p50 ms | p99 ms | max ms |',
      '|---|---:|---:|---:|',
      `| ${transport === 'redis' ? 'Redis pub/sub' : 'PostgreSQL LISTEN/NOTIFY'} | ${pct(50)} | ${pct(99)} | ${delays.at(-1)!.toFixed(2)} |`,
      '',
    ].join('\n')
    process.stdout.write(table)
    mkdirSync('bench/results', { recursive: true })
    writeFileSync(`bench/results/revocation-${transport}-${new Date().toISOString().slice(0, 10)}.md`, table)
  } finally {
    await Promise.all([a.stop(), b.stop()])
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
    if (transport === 'redis') {
      const redis = new Redis(redisUrl)
      const left = await redis.keys(`${prefix}*`)
      if (left.length) await redis.del(...left)
      redis.disconnect()
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
