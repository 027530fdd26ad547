import { Cluster, Redis, type RedisOptions } from 'ioredis'

/**
 * REDIS_URL in its three shapes, each through ioredis's own support:
 *   redis://[user:password@]host:port[/db]  (rediss:// for TLS)            one server
 *   redis-sentinel://[user:password@]host:port[,host:port…]/master[/db]   Sentinel: the master named `master`
 *   redis-cluster://[user:password@]host:port[,host:port…]                Cluster: any of its nodes to start from
 * (`rediss-sentinel://` and `rediss-cluster://` with TLS.) Every key Keygate writes in one command is a single key,
 * so Cluster needs no hash tags.
 */
export type RedisClient = Redis | Cluster

interface Node { host: string; port: number }
export type RedisTarget =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinels: Node[]; name: string; db: number; username?: string; password?: string; tls: boolean }
  | { kind: 'cluster'; nodes: Node[]; username?: string; password?: string; tls: boolean }

const SHAPES = 'redis://host:port, rediss://…, redis-sentinel://host:port[,host:port]/master or redis-cluster://host:port[,host:port]'

/** @throws Error naming the expected shapes when `url` is none of them. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?)(?:-(sentinel|cluster))?:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url)
  if (!m) throw new Error(`not a Redis URL (${SHAPES})`)
  const [, scheme, mode, user, pass, hostList, path] = m
  if (!mode) return { kind: 'standalone', url }
  const nodes = hostList!.split(',').map((hp): Node => {
    const nm = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(hp.trim())
    if (!nm || Number(nm[2]) > 65535) throw new Error(`"${hp}" is not host:port (${SHAPES})`)
    return { host: nm[1]!.replace(/^\[|\]$/g, ''), port: Number(nm[2]) }
  })
  const auth = { ...(user ? { username: decodeURIComponent(user) } : {}), ...(pass ? { password: decodeURIComponent(pass) } : {}) }
  const tls = scheme === 'rediss'
  if (mode === 'cluster') {
    if (path) throw new Error(`a Redis Cluster URL has no path: Cluster has database 0 only (${SHAPES})`)
    return { kind: 'cluster', nodes, tls, ...auth }
  }
  const [name, db = '0'] = (path ?? '').split('/')
  if (!name || !/^\d+$/.test(db)) throw new Error(`a Sentinel URL names the master, and optionally a database: redis-sentinel://host:port/mymaster[/0]`)
  return { kind: 'sentinel', sentinels: nodes, name: decodeURIComponent(name), db: Number(db), tls, ...auth }
}

/**
 * A client for `target`. `commands`: a command fails at once while Redis is away (no offline queue), so callers
 * fall back instead of waiting. `subscriber`: queues and retries without end (it only subscribes).
 */
export function connectRedis(target: RedisTarget, role: 'commands' | 'subscriber'): RedisClient {
  const behaviour: RedisOptions = role === 'commands'
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 }
    : { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 2000 }
  if (target.kind === 'standalone') return new Redis(target.url, behaviour)
  const auth = { username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) }
  if (target.kind === 'sentinel') return new Redis({ ...behaviour, ...auth, sentinels: target.sentinels, name: target.name, db: target.db })
  return new Cluster(target.nodes, { enableOfflineQueue: behaviour.enableOfflineQueue, redisOptions: { ...auth, connectTimeout: 2000, maxRetriesPerRequest: behaviour.maxRetriesPerRequest } })
}

/** A deployment's two Redis connections: commands (the shared cache, counters, publishing) and a subscriber. */
export interface RedisClients { commands: RedisClient; subscriber: RedisClient }

/**
 * Opens both connections a composition root needs when REDIS_URL is set (undefined otherwise); each closes with
 * `cleanups`. Their errors are reported by the commands that fail, not as events.
 * @throws Error naming the expected shapes when the URL is none of them
 */
export function openRedis(url: string | undefined, cleanups: Array<() => Promise<void>>): RedisClients | undefined {
  if (!url) return undefined
  const target = parseRedisUrl(url)
  const commands = connectRedis(target, 'commands')
  const subscriber = connectRedis(target, 'subscriber')
  for (const c of [commands, subscriber]) {
    c.on('error', () => {})
    cleanups.unshift(async () => { c.disconnect() })
  }
  return { commands, subscriber }
}
