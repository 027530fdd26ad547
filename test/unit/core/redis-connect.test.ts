import t from 'tap'
import { parseRedisUrl } from '../../../core/redis-connect.ts'

t.test('a redis:// or rediss:// URL is one server, passed to ioredis as it is', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6379'), { kind: 'standalone', url: 'redis://127.0.0.1:6379' })
  t.same(parseRedisUrl('rediss://:s3cret@cache.internal:6380/2'), { kind: 'standalone', url: 'rediss://:s3cret@cache.internal:6380/2' })
})

t.test('a Sentinel URL lists the sentinels and names the master, with credentials and a database', async (t) => {
  t.same(parseRedisUrl('redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster'), {
    kind: 'sentinel', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }], name: 'mymaster', db: 0, tls: false,
  })
  t.same(parseRedisUrl('rediss-sentinel://app:p%40ss@[::1]:26379/main/3'), {
    kind: 'sentinel', sentinels: [{ host: '::1', port: 26379 }], name: 'main', db: 3, tls: true, username: 'app', password: 'p@ss',
  })
})

t.test('a Cluster URL lists the nodes to start from', async (t) => {
  t.same(parseRedisUrl('redis-cluster://a.internal:7000,b.internal:7001'), {
    kind: 'cluster', nodes: [{ host: 'a.internal', port: 7000 }, { host: 'b.internal', port: 7001 }], tls: false,
  })
  t.same(parseRedisUrl('redis-cluster://:pw@a:7000'), { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], tls: false, password: 'pw' })
})

t.test('anything else is refused with the shapes that are accepted', async (t) => {
  for (const bad of ['http://127.0.0.1:6379', 'redis-sentinel://10.0.0.1:26379', 'redis-sentinel://10.0.0.1/m', 'redis-cluster://a:7000/1', 'redis-cluster://a:99999', 'redis-sentinel://a:1/m/x', 'redis://']) {
    t.throws(() => parseRedisUrl(bad), { message: /redis|Sentinel|Cluster|host:port/ }, bad)
  }
})
