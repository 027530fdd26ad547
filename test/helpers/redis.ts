import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * A key prefix of its own on the local Redis for one test; `drop()` deletes every key under it. Fails loudly
 * (never skips) when Redis does not answer.
 */
export async function testRedisPrefix(label: string): Promise<{ url: string; prefix: string; client: Redis; drop(): Promise<void> }> {
  const prefix = `kgtest:${label}:${randomBytes(4).toString('hex')}:`
  const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null })
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    client.disconnect()
    throw new Error(`Redis at ${TEST_REDIS_URL} is not answering (${(err as Error).message}); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no (or set TEST_REDIS_URL)`)
  }
  return {
    url: TEST_REDIS_URL,
    prefix,
    client,
    async drop() {
      const keys = await client.keys(`${prefix}*`)
      if (keys.length) await client.del(...keys)
      client.disconnect()
    },
  }
}
