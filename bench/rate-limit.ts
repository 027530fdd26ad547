import { Redis } from 'ioredis'
import { systemClock } from '../core/clock.ts'
import { memoryRateCounter, type Bucket, type RateCounter } from '../core/rate-counter.ts'
import { redisRateCounter } from '../core/rate-counter-redis.ts'

/**
 * `npx tsx bench/rate-limit.ts`: the gateway-side CPU one rate-limited request costs, by counter: N decisions,
 * 50 at a time (as the gateway bench's 50 connections), CPU time of this process (user + system) per decision.
 * With Redis this is the client's share (encoding the call, parsing the answer, the socket): Redis' own time
 * runs in its process. BENCH_REDIS_URL (redis://127.0.0.1:6379), RATE_BENCH_N (50000).
 */
const n = Number(process.env.RATE_BENCH_N ?? 50_000)
const concurrency = 50

async function measure(name: string, counter: RateCounter): Promise<void> {
  const bucket = (i: number): Bucket[] => [{ kind: 'sliding', key: `rl:{u:bench${i % 500}}:r:bench:k:${i % 500}`, policy: { limit: 1_000_000, windowMs: 60_000 } }]
  for (let i = 0; i < 2_000; i++) await counter.take(bucket(i))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await counter.take(bucket(next++))
  }))
  const cpu = process.cpuUsage(cpu0)
  const ms = performance.now() - t0
  process.stdout.write(`| ${name} | ${n} | ${(((cpu.user + cpu.system) / n)).toFixed(1)} | ${(n / (ms / 1000)).toFixed(0)} |\n`)
}

async function main() {
  process.stdout.write('| counter | decisions | CPU µs per decision (this process) | decisions/s |\n|---|---:|---:|---:|\n')
  await measure('in-process (embedded default)', memoryRateCounter(systemClock))
  const redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  await redis.connect()
  const prefix = `kgbench:rl:${process.pid}:`
  try {
    await measure('Redis, one Lua script per decision (no lease)', redisRateCounter(redis, { prefix, leaseShare: 0 }))
    const leased = redisRateCounter(redis, { prefix: `${prefix}l:` })
    await measure('Redis, leases of 1 % of the limit', leased)
    await leased.close?.()
  } finally {
    const keys = await redis.keys(`${prefix}*`)
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
    redis.disconnect()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${String(err)}\n`)
  process.exit(1)
})
