import t, { type Test } from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { testRedisPrefix } from '../helpers/redis.ts'

const LIMIT = { KEYGATE_LOGIN_MAX_ATTEMPTS: '3', KEYGATE_LOGIN_WINDOW_SEC: '60' }

async function bruteForce(t: Test, base: string) {
  for (let i = 0; i < 3; i++) {
    const res = await call(base, 'POST', '/api/v1/auth/login', { body: { username: BOOTSTRAP.username, password: `guess ${i}` } })
    t.equal(res.status, 401, `guess ${i + 1} is a plain failure`)
  }
  const blocked = await call(base, 'POST', '/api/v1/auth/login', { body: { username: BOOTSTRAP.username, password: BOOTSTRAP.password } })
  t.equal(blocked.status, 429, 'then even the right password waits')
  t.equal(blocked.json.code, 'RATE_LIMITED')
  const retry = Number(blocked.headers.get('retry-after'))
  t.ok(retry > 0 && retry <= 60, `Retry-After is within the window (${retry}s)`)
  return blocked
}

t.test('failed logins are limited per username, in process', async (t) => {
  const kg = await keygateOnPostgres('limits', LIMIT)
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  await bruteForce(t, kg.url)
})

t.test('with Redis, the limit is shared by every instance', async (t) => {
  const redis = await testRedisPrefix('limits')
  const schema = await testSchema('limits_redis')
  const env = { ...LIMIT, REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix }
  const a = await keygateOnPostgres('limits_a', env, schema)
  const b = await keygateOnPostgres('limits_b', env, schema)
  t.teardown(async () => { await a.close(); await b.close(); await schema.drop(); await redis.drop() })
  await bruteForce(t, a.url)
  const onB = await call(b.url, 'POST', '/api/v1/auth/login', { body: { username: BOOTSTRAP.username, password: BOOTSTRAP.password } })
  t.equal(onB.status, 429, 'the other instance knows')
  t.ok((await redis.client.keys(`${redis.prefix}login:*`)).length >= 1, 'the counters live in Redis under the prefix')
})

t.test('an unknown username costs the same scrypt work as a wrong password, so timing does not tell them apart', async (t) => {
  const kg = await keygateOnPostgres('login_timing', { KEYGATE_LOGIN_MAX_ATTEMPTS: '1000', KEYGATE_PASSWORD_HASH_LOG_N: '15' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const timeOf = async (username: string) => {
    const start = performance.now()
    const res = await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username, password: 'not the password' } })
    t.equal(res.status, 401)
    return performance.now() - start
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const wrong: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 7; i++) {
    wrong.push(await timeOf(BOOTSTRAP.username))
    unknown.push(await timeOf(`nobody-${i}`))
  }
  const ratio = median(unknown) / median(wrong)
  // Without the dummy hash an unknown user answers in a database round trip, over ten times faster.
  t.ok(ratio > 0.4 && ratio < 2.5, `median unknown ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`)
})

t.test('behind a trusted proxy, the per-address limit counts the address the proxy saw, not one the client wrote', async (t) => {
  const kg = await keygateOnPostgres('limits_proxy', { ...LIMIT, KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const attempt = (i: number) => call(kg.url, 'POST', '/api/v1/auth/login', {
    body: { username: `user${i}`, password: 'guess' },
    headers: { 'x-forwarded-for': `198.51.100.${i}, 203.0.113.9` },
  })
  for (let i = 0; i < 3; i++) t.equal((await attempt(i)).status, 401, `attempt ${i + 1}, with a made-up address in front`)
  const blocked = await attempt(3)
  t.equal(blocked.status, 429, 'the fourth from the same proxied address is limited')
  t.equal(blocked.json.code, 'RATE_LIMITED')
})
