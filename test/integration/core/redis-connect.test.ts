import t, { type Test } from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres, refusedWithin } from '../../helpers/keygate.ts'
import { testSchema } from '../../helpers/postgres.ts'
import { TEST_REDIS_URL, testRedisPrefix } from '../../helpers/redis.ts'
import { redisCluster, redisSentinel, type RedisTopology } from '../../helpers/redis-topologies.ts'

/** Two gateways on one database and the Redis at `url`: a revocation through A reaches B over that Redis. */
async function revocationReachesTheOther(t: Test, url: string, prefix: string) {
  const schema = await testSchema('redis_topology')
  const env = { REDIS_URL: url, KEYGATE_REDIS_PREFIX: prefix }
  const a = await keygateOnPostgres('topology_a', env, schema)
  const b = await keygateOnPostgres('topology_b', env, schema)
  t.teardown(async () => { await a.close(); await b.close(); await schema.drop() })
  t.notOk([...a.logs, ...b.logs].some((l) => l.includes('redis unavailable at start')), 'both connected at start')
  const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json
  t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'B caches the key')
  t.equal((await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })).status, 200, 'A revokes it, publishing on this Redis')
  const seen = await refusedWithin(b.url, key.api_key, 1000)
  t.equal(seen.code, 'KEY_REVOKED', `B refuses it after ${seen.afterMs.toFixed(1)} ms`)
}

t.test('through Redis Sentinel, a revocation reaches every gateway', async (t) => {
  const master = new URL(TEST_REDIS_URL)
  const keys = await testRedisPrefix('sentinel') // the master is the local Redis: its keys go with the test
  const sentinel: RedisTopology = await redisSentinel({ host: master.hostname, port: Number(master.port || 6379) })
  t.teardown(async () => { await sentinel.stop(); await keys.drop() })
  await revocationReachesTheOther(t, sentinel.url, keys.prefix)
})

t.test('through Redis Cluster, a revocation reaches every gateway', async (t) => {
  const cluster = await redisCluster()
  t.teardown(() => cluster.stop())
  await revocationReachesTheOther(t, cluster.url, 'keygate:')
})
