import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { Runtime } from '../scripts/entry-points.ts'
import { startKeygateProcess } from './spawn.ts'
import { treeRss } from './system.ts'
import { BENCH_DATABASE_URL, BENCH_REDIS_URL } from './fixtures.ts'

/**
 * `npm run bench:idle-memory`: resident memory (VmRSS, Linux) of one idle gateway process, compiled
 * (`node dist/gateway/main.js`, what production runs) against the sources through tsx (`npm run dev`), on the
 * embedded default and on the local PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL). Each process
 * starts, answers one `/readyz`, idles BENCH_IDLE_SECONDS (10), and is measured; BENCH_ROUNDS (3) interleaved
 * rounds, the median printed and written under bench/results/. "tree" adds the processes below the gateway (tsx's esbuild service).
 */
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 10)
const databaseUrl = BENCH_DATABASE_URL
const redisUrl = BENCH_REDIS_URL

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

async function measure(runtime: Runtime, env: Record<string, string>): Promise<{ rss: number; tree: number }> {
  const kg = await startKeygateProcess({ PORT: '0', HOST: '127.0.0.1', METRICS_PORT: '0', KEYGATE_CONFIG_WATCH: 'false', KEYGATE_BOOTSTRAP_USERNAME: 'bench', KEYGATE_BOOTSTRAP_EMAIL: 'bench@example.com', KEYGATE_BOOTSTRAP_PASSWORD: 'bench password', KEYGATE_PASSWORD_HASH_LOG_N: '14', ...env }, runtime)
  try {
    if (!(await fetch(`${kg.url}/readyz`)).ok) throw new Error('keygate is not ready')
    await new Promise((r) => setTimeout(r, idleSeconds * 1000))
    return { rss: rssOf(kg.pid), tree: treeRss(kg.pid) }
  } finally {
    await kg.stop()
  }
}

async function main() {
  const id = randomBytes(4).toString('hex')
  const schema = `kg_bench_idle_${id}`
  const prefix = `kgbench:idle:${id}:`
  const dir = mkdtempSync(join(tmpdir(), 'keygate-idle-'))
  const stores: Record<string, (round: number) => Record<string, string>> = {
    embedded: (round) => ({ KEYGATE_DATA_DIR: join(dir, `data-${round}`) }),
    'PostgreSQL + Redis': () => ({ DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, REDIS_URL: redisUrl, KEYGATE_REDIS_PREFIX: prefix }),
  }
  const samples = new Map<string, Array<{ rss: number; tree: number }>>()
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [store, env] of Object.entries(stores)) {
        for (const runtime of ['source', 'compiled'] as const) {
          const key = `${store}|${runtime}`
          const s = await measure(runtime, env(round))
          samples.set(key, [...(samples.get(key) ?? []), s])
          process.stderr.write(`bench: round ${round + 1} ${store} ${runtime}: ${(s.rss / 2 ** 20).toFixed(1)} MiB\n`)
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
    const redis = new Redis(redisUrl)
    const left = await redis.keys(`${prefix}*`)
    if (left.length) await redis.del(...left)
    redis.disconnect()
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
  const mib = (b: number) => (b / 2 ** 20).toFixed(1)
  const lines = [
    `Idle gateway RSS, ${new Date().toISOString()}, Node ${process.version}, median of ${rounds} after ${idleSeconds} s idle`,
    '',
    '| store | tsx (sources) MiB | tree with esbuild MiB | compiled MiB | saved MiB |',
    '|---|---:|---:|---:|---:|',
    ...Object.keys(stores).map((store) => {
      const src = samples.get(`${store}|source`)!
      const out = samples.get(`${store}|compiled`)!
      const [s, tree, c] = [median(src.map((x) => x.rss)), median(src.map((x) => x.tree)), median(out.map((x) => x.rss))]
      return `| ${store} | ${mib(s)} | ${mib(tree)} | ${mib(c)} | ${mib(s - c)} |`
    }),
    '',
  ]
  process.stdout.write(lines.join('\n'))
  mkdirSync('bench/results', { recursive: true })
  writeFileSync(`bench/results/idle-memory-${new Date().toISOString().slice(0, 10)}.md`, lines.join('\n'))
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
