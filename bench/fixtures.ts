import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { apiKeyFormat } from '../core/api-key-format.ts'
import { openPgDb } from '../core/db-pg.ts'
import { keyStore } from '../core/key-store.ts'
import { userStore } from '../core/user-store.ts'

/** What the gateway benchmark needs besides the gateways: the local PostgreSQL and Redis, a user, credentials. */

export const BENCH_USER = { username: 'bench', password: 'bench password' }

/** The local servers every benchmark uses (BENCH_DATABASE_URL, BENCH_REDIS_URL), and the rows it was asked for (BENCH_ONLY, comma-separated ids). */
export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const BENCH_ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined

/**
 * The settings every benchmarked Keygate shares, its route file written into `dir`: the admin API, `/bench` on
 * the bench's upstream, and `/limited` on the same upstream with a route rate limit never reached (what counting
 * costs), the bench user created on first start.
 */
export function benchGatewayEnv(dir: string, upstreamOrigin: string): Record<string, string> {
  const config = join(dir, 'keygate.yaml')
  writeFileSync(config, `upstreams:\n  admin: { url: "internal:admin" }\n  bench: { url: "${upstreamOrigin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, methods: [POST], upstream: admin, auth: public }\n  - { name: auth, prefix: /api/v1/auth, upstream: admin }\n  - { name: bench, prefix: /bench, upstream: bench }\n  - { name: bench-limited, prefix: /limited, upstream: bench, rate_limit: { limit: 1000000, window_seconds: 60 } }\n`)
  return { KEYGATE_CONFIG: config, KEYGATE_BOOTSTRAP_USERNAME: BENCH_USER.username, KEYGATE_BOOTSTRAP_EMAIL: 'bench@example.com', KEYGATE_BOOTSTRAP_PASSWORD: BENCH_USER.password, KEYGATE_ACCESS_TOKEN_TTL: '3600', KEYGATE_MAX_KEYS_PER_USER: '10' }
}

/** A schema of its own on the local PostgreSQL and a Redis key prefix, or why they cannot be had. */
export async function sharedStores(databaseUrl: string, redisUrl: string): Promise<{ schema: string; prefix: string; drop(): Promise<void> } | { skipped: string }> {
  const schema = `kg_bench_${randomBytes(4).toString('hex')}`
  const prefix = `kgbench:${randomBytes(4).toString('hex')}:`
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query(`CREATE SCHEMA ${schema}`)
  } catch (err) {
    return { skipped: `PostgreSQL at ${databaseUrl} is not answering (${(err as Error).message}); set BENCH_DATABASE_URL` }
  } finally {
    await client.end().catch(() => {})
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null })
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    redis.disconnect()
    return { skipped: `Redis at ${redisUrl} is not answering (${(err as Error).message}); set BENCH_REDIS_URL` }
  }
  redis.disconnect()
  return {
    schema,
    prefix,
    async drop() {
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
      await deleteRedisKeys(redisUrl, `${prefix}*`)
    },
  }
}

/** Deletes every Redis key matching `pattern` (the bench's own prefix). */
export async function deleteRedisKeys(redisUrl: string, pattern: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      if (keys.length) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

async function json(url: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json()
}

/** Logs the bench user in through the gateway and creates an API key: a JWT and a key, as a client has them. */
export async function credentials(origin: string): Promise<{ jwt: string; key: string }> {
  const jwt = ((await json(`${origin}/api/v1/auth/login`, BENCH_USER)) as { access_token: string }).access_token
  const key = ((await json(`${origin}/api/v1/auth/api-key`, { name: `bench-${randomBytes(3).toString('hex')}` }, jwt)) as { api_key: string }).api_key
  return { jwt, key }
}

/**
 * `count` more keys of the bench user, written straight to the store (the admin API caps keys per user at
 * 1000), one per line in `file`.
 */
export async function keyPool(databaseUrl: string, schema: string, count: number, file: string): Promise<void> {
  const db = await openPgDb({ connectionString: databaseUrl, schema, poolSize: 8 })
  try {
    const user = await userStore.findForLogin(db, { username: BENCH_USER.username })
    if (!user) throw new Error('the bench user does not exist yet')
    const format = apiKeyFormat()
    const keys: string[] = []
    for (let i = 0; i < count; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, count - i) }, async (_, j) => {
        const { key, hash, display } = format.generate()
        await keyStore.create(db, { userId: user.id, name: `pool-${i + j}`, hash, display, scopes: [], expiresAt: null, maxActive: Number.MAX_SAFE_INTEGER }, new Date())
        keys.push(key)
      }))
    }
    writeFileSync(file, keys.join('\n') + '\n')
  } finally {
    await db.close()
  }
}

/**
 * The secret Keygate signs access tokens with, as the gateways on `schema` use it: KEYGATE_JWT_SECRET when this
 * process has it (the gateways inherit it), otherwise the one generated into the database on first start. The
 * stack rows verify Keygate's tokens with it.
 */
export async function accessTokenSecret(databaseUrl: string, schema: string): Promise<string> {
  if (process.env.KEYGATE_JWT_SECRET) return process.env.KEYGATE_JWT_SECRET
  const c = new pg.Client({ connectionString: databaseUrl })
  await c.connect()
  try {
    const { rows } = await c.query<{ value: string }>(`SELECT value FROM ${schema}.keygate_secrets WHERE name = 'jwt_secret'`)
    if (!rows[0]) throw new Error(`no jwt_secret in ${schema}.keygate_secrets`)
    return rows[0].value
  } finally {
    await c.end()
  }
}
