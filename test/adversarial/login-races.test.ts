import t, { type Test } from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { testRedisPrefix } from '../helpers/redis.ts'

/**
 * Password guessing that races the limiter: 40 concurrent guesses against a limit of 10 (each attempt must be
 * counted before its password is checked, or all 40 are checked), a burst deeper than the hash queue (refused at
 * once with 503, never queued for seconds), and a stolen login token guessing the current password through
 * `POST /change-password` (counted per user, 429 like login).
 */
const GUESSES = 40

async function concurrentGuesses(t: Test, base: string) {
  const answers = await Promise.all(Array.from({ length: GUESSES }, (_, i) =>
    call(base, 'POST', '/api/v1/auth/login', { body: { username: BOOTSTRAP.username, password: `guess number ${i}` } })))
  const checked = answers.filter((a) => a.status === 401 && a.json.code === 'LOGIN_FAILED').length
  const limited = answers.filter((a) => a.status === 429 && a.json.code === 'RATE_LIMITED' && Number(a.headers.get('retry-after')) > 0).length
  t.equal(checked, 10, `${checked} of ${GUESSES} concurrent guesses had their password checked (limit 10)`)
  t.equal(limited, GUESSES - 10, 'the others got 429 RATE_LIMITED with Retry-After, unchecked')
  const right = await call(base, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  t.same([right.status, right.json.code], [429, 'RATE_LIMITED'], 'then the right password waits for the window too')
  t.comment(`figure: ${checked} of ${GUESSES} concurrent guesses checked`)
}

t.test('40 concurrent guesses: only the limit is checked, in process', async (t) => {
  const kg = await keygateOnPostgres('adv_login_race', { KEYGATE_LOGIN_MAX_ATTEMPTS: '10', KEYGATE_PASSWORD_HASH_QUEUE: '100' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  await concurrentGuesses(t, kg.url)
})

t.test('40 concurrent guesses: only the limit is checked, with the counters in Redis', async (t) => {
  const redis = await testRedisPrefix('adv_login_race')
  const kg = await keygateOnPostgres('adv_login_race_redis', { KEYGATE_LOGIN_MAX_ATTEMPTS: '10', KEYGATE_PASSWORD_HASH_QUEUE: '100', REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await redis.drop() })
  await concurrentGuesses(t, kg.url)
  t.equal(Number(await redis.client.get(`${redis.prefix}login:user:${BOOTSTRAP.username}`)), 10, 'Redis holds exactly the 10 counted failures')
})

t.test('a successful login gives its reserved attempt back: only failures count', async (t) => {
  const kg = await keygateOnPostgres('adv_login_release', { KEYGATE_LOGIN_MAX_ATTEMPTS: '3' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  for (let i = 0; i < 5; i++) t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).status, 200, `login ${i + 1} of the right password`)
  for (let i = 0; i < 2; i++) t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: { ...BOOTSTRAP, password: 'wrong password' } })).status, 401)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).status, 200, 'two failures after five successes: still within the limit of 3')
})

t.test('a burst deeper than the hash queue is refused at once with 503, and other logins are not held up', async (t) => {
  const kg = await keygateOnPostgres('adv_login_queue', { KEYGATE_LOGIN_MAX_ATTEMPTS: '1000', KEYGATE_PASSWORD_HASH_QUEUE: '4', KEYGATE_PASSWORD_HASH_LOG_N: '15' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const started = performance.now()
  const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => (async () => {
    const res = await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: `someone${i}`, password: 'a guess' } })
    return { status: res.status, code: res.json.code as string, ms: performance.now() - started, retry: res.headers.get('retry-after') }
  })()))
  const busy = burst.filter((b) => b.status === 503 && b.code === 'PASSWORD_HASH_BUSY')
  const checked = burst.filter((b) => b.status === 401 && b.code === 'LOGIN_FAILED')
  t.equal(busy.length + checked.length, burst.length, 'every answer is a checked failure or 503 PASSWORD_HASH_BUSY')
  t.ok(checked.length >= 6 && checked.length < 30, `${checked.length} checked (2 hashing + 4 queued at a time), ${busy.length} refused`)
  t.ok(busy.every((b) => b.retry === '1'), 'the 503s carry Retry-After: 1')
  const slowestBusy = Math.max(...busy.map((b) => b.ms))
  const slowestChecked = Math.max(...checked.map((b) => b.ms))
  t.ok(slowestBusy < slowestChecked, `refusals came at once (slowest ${slowestBusy.toFixed(0)} ms), not after the queue (${slowestChecked.toFixed(0)} ms)`)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).status, 200, 'after the burst, a login succeeds')
})

t.test('change-password failures are counted per user: a stolen token cannot guess the current password', async (t) => {
  const kg = await keygateOnPostgres('adv_pw_change', { KEYGATE_LOGIN_MAX_ATTEMPTS: '3' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const attempt = (current: string) => call(kg.url, 'POST', '/api/v1/auth/change-password', { token: jwt, body: { current_password: current, new_password: 'a brand new password' } })
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => attempt(`guess ${i}`)))
  t.equal(answers.filter((a) => a.status === 401 && a.json.code === 'PASSWORD_INCORRECT').length, 3, '3 of 10 concurrent guesses checked')
  t.equal(answers.filter((a) => a.status === 429 && a.json.code === 'RATE_LIMITED' && Number(a.headers.get('retry-after')) > 0).length, 7, 'the rest 429 with Retry-After')
  const right = await attempt(BOOTSTRAP.password)
  t.same([right.status, right.json.code], [429, 'RATE_LIMITED'], 'the right current password is not checked either while locked')
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).status, 200, 'the password did not change')
})
