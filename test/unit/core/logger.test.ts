import t from 'tap'
import { apiKeyFormat } from '../../../core/api-key-format.ts'
import { manualClock } from '../../../core/clock.ts'
import { jsonLogger, scrub } from '../../../core/logger.ts'
import { tokenService } from '../../../core/tokens.ts'

const tokens = tokenService({ secret: 'x'.repeat(32), issuer: 'keygate', audience: 'keygate', accessTtlSec: 900, refreshTtlSec: 3600, clock: manualClock() })

t.test('API keys of any environment are masked', async (t) => {
  const live = apiKeyFormat().generate().key
  const test = apiKeyFormat('sk_test_').generate().key
  t.equal(scrub(`key=${live}`), 'key=[redacted]')
  t.equal(scrub(`"${test}" rejected`), '"[redacted]" rejected')
  t.equal(scrub('Bearer sk_live_notAValidKeyButLong'), 'Bearer [redacted]', 'a malformed key is masked too')
})

t.test('JWT-shaped strings are masked', async (t) => {
  const { token } = tokens.issueAccess('user-1', 'session-1')
  t.equal(scrub(`authorization: Bearer ${token}`), 'authorization: Bearer [redacted]')
  t.equal(scrub(`{"identity":"${token}","ok":true}`), '{"identity":"[redacted]","ok":true}')
  t.equal(scrub('eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'), '[redacted]', 'an unsigned token too')
})

t.test('refresh tokens are masked', async (t) => {
  const { token } = tokens.newRefreshToken()
  t.equal(scrub(`refresh_token=${token}&x=1`), 'refresh_token=[redacted]&x=1')
})

t.test('several secrets in one line are each masked', async (t) => {
  const key = apiKeyFormat().generate().key
  const { token } = tokens.newRefreshToken()
  const out = scrub(`${key} then ${token}`)
  t.equal(out, '[redacted] then [redacted]')
})

t.test('ordinary text is left untouched', async (t) => {
  for (const text of [
    'request completed in 12 ms',
    '{"route":"documents","status":200,"key_id":"0d9c1f7e-7d5b-4d0e-9b8f-3c2f0a1b2c3d"}',
    'disk_cache_hits=12 task_runner=ok sort_order=asc',
    'sk_live_ is the prefix', 'rt_short', 'eyJ alone', 'part_of_a_word_rt_abcdefghijklmnopqrstuvwx',
  ]) {
    t.equal(scrub(text), text, text)
  }
})

t.test('the JSON logger scrubs every line it writes and honours its level', async (t) => {
  const lines: string[] = []
  const log = jsonLogger({ level: 'info', write: (l) => lines.push(l), base: { service: 'gateway' } })
  const key = apiKeyFormat().generate().key
  log.debug('hidden')
  log.info('login', { credential: key, user_id: 'u1' })
  log.child({ request_id: 'r1' }).warn(`bad key ${key}`)
  t.equal(lines.length, 2)
  for (const line of lines) t.notOk(line.includes(key), 'no key in the output')
  const first = JSON.parse(lines[0]!) as Record<string, unknown>
  t.match(first, { level: 'info', msg: 'login', service: 'gateway', credential: '[redacted]', user_id: 'u1' })
  t.match(JSON.parse(lines[1]!), { level: 'warn', msg: 'bad key [redacted]', request_id: 'r1' })
})
