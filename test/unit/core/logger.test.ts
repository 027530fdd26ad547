import t from 'tap'
import { apiKeyFormat } from '../../../core/api-key-format.ts'
import { manualClock } from '../../../core/clock.ts'
import { jsonLogger, numberJson, scrub, scrubbedPart } from '../../../core/logger.ts'
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

t.test('a line is the JSON of time, level, msg, the base fields, then the fields, as JSON.stringify writes it', async (t) => {
  const lines: string[] = []
  const base = { service: 'keygate', role: 'worker' }
  const log = jsonLogger({ level: 'debug', write: (l) => lines.push(l), base })
  const cases: Array<Record<string, any>> = [
    {},
    { request_id: 'r-1', route: 'docs', method: 'GET', status: 200, duration_ms: 1.25, upstream_ms: undefined, auth: 'api_key', user_id: 'u"1\\', key_id: null },
    { ok: true, n: Number.NaN, inf: Infinity, list: ['a', 'b'], empty: '', unicode: 'é\u2028\n' },
    { service: 'overridden', extra: 1 },
    { msg: 'field named msg', level: 'x', time: 'y' },
    { role: undefined },
  ]
  for (const [i, fields] of cases.entries()) {
    lines.length = 0
    log.info('request', fields)
    const line = lines[0]!
    const parsed = JSON.parse(line) as Record<string, unknown>
    t.equal(line, JSON.stringify({ time: parsed.time, level: 'info', msg: 'request', ...base, ...fields }), `case ${i}`)
    if (!('time' in fields)) t.match(parsed.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `case ${i}: time in ISO 8601`)
  }
})

t.test('strings that JSON must escape are escaped in every position', async (t) => {
  const lines: string[] = []
  const log = jsonLogger({ level: 'info', write: (l) => lines.push(l) })
  const nasty = ['quote " here', 'back\\slash', 'tab\tnew\nline', '\u0000\u001f', 'lone \ud800 surrogate', 'pair 😀', 'del \u007f', 'latin é']
  for (const s of nasty) log.info(s, { field: s, list: [s] })
  for (const [i, line] of lines.entries()) {
    const parsed = JSON.parse(line) as Record<string, unknown>
    t.same([parsed.msg, parsed.field, parsed.list], [nasty[i], nasty[i], [nasty[i]]], `string ${i} survives`)
    t.equal(line, JSON.stringify({ time: parsed.time, level: 'info', msg: nasty[i], field: nasty[i], list: [nasty[i]] }), `string ${i} is written as JSON.stringify writes it`)
  }
})

t.test('a template writes what info() writes for the same fields, undefined values left out, secrets scrubbed', async (t) => {
  const key = apiKeyFormat().generate().key
  const keys = ['request_id', 'route', 'status', 'duration_ms', 'upstream_ms', 'user_agent', 'list', 'ok', 'code']
  const rows: Array<Array<string | number | boolean | undefined | null | readonly string[]>> = [
    ['r-1', 'docs', 200, 1.25, undefined, 'curl/8', ['a'], true, undefined],
    ['r-2', 'none', 0, Number.NaN, 0.5, `agent ${key}`, [], false, 'ROUTE_NOT_FOUND'],
    [undefined, 'q"uote\\', 502, 3, 2, 'é\u2028\n', ['x"'], null as unknown as boolean, 'UPSTREAM_UNAVAILABLE'],
  ]
  for (const base of [{ service: 'keygate' }, { service: 'keygate', route: 'base-route' }, { level: 'base-level' }, {}]) {
    const viaInfo: string[] = []
    const viaTemplate: string[] = []
    const a = jsonLogger({ level: 'info', write: (l) => viaInfo.push(l), base })
    const b = jsonLogger({ level: 'info', write: (l) => viaTemplate.push(l), base }).template('info', 'request', keys)
    for (const row of rows) {
      a.info('request', Object.fromEntries(keys.map((k, i) => [k, row[i]])))
      b(row)
    }
    const untimed = (l: string) => l.replace(/"time":"[^"]*"/, '"time":"T"')
    t.same(viaTemplate.map(untimed), viaInfo.map(untimed), `base ${JSON.stringify(base)}`)
    t.notOk(viaTemplate.some((l) => l.includes(key)), 'no key in the output')
  }
})

t.test('a template scrubs each value as the whole line would be scrubbed, wherever the secret stands', async (t) => {
  const key = apiKeyFormat().generate().key
  const { token: jwt } = tokens.issueAccess('user-1', 'session-1')
  const { token: refresh } = tokens.newRefreshToken()
  const values = [
    key, `x${key}`, `${key}"`, `a\n${key}`, `\rt_${'a'.repeat(20)}`, `q\\sk_live_${'b'.repeat(12)}`, `${jwt}.${refresh}`,
    `é\u2028${refresh}`, 'sk_live_ is the prefix', 'part_of_a_word_rt_abcdefghijklmnopqrstuvwx', 'eyJ alone', 'rt_short',
    `\u0000${jwt}`, [key, 'ok'], '\ud800sk_test_abcdefghijkl', 'ordinary', 12, undefined,
  ]
  for (const [i, value] of values.entries()) t.equal(scrubbedPart(value), value === undefined ? undefined : scrub(JSON.stringify(value)), `value ${i}`)
  // A secret in the base fields, or a field name shaped like one: the line is scrubbed whole.
  for (const [base, keys] of [[{ service: key }, ['a', 'b']], [{}, [`sk_live_${'c'.repeat(10)}`, 'b']]] as const) {
    const viaInfo: string[] = []
    const viaTemplate: string[] = []
    jsonLogger({ level: 'info', write: (l) => viaInfo.push(l), base }).info('request', { [keys[0]]: 'v', [keys[1]]: key })
    jsonLogger({ level: 'info', write: (l) => viaTemplate.push(l), base }).template('info', 'request', keys)(['v', key])
    const untimed = (l: string) => l.replace(/"time":"[^"]*"/, '"time":"T"')
    t.same(viaTemplate.map(untimed), viaInfo.map(untimed), JSON.stringify(base))
    t.notOk(viaTemplate[0]!.includes(key), 'no key in the output')
  }
})

t.test('a number is written as JSON.stringify writes it, two-decimal values included', async (t) => {
  for (const v of [0, -0, 1, 0.5, 0.05, 0.1, 0.01, 1.23, 12.3, 99.99, 100.01, 0.3, 1.005, 2.675, 1e-7, 123456.78, 9_999_999_999_999.99, 1e13 + 0.5, 1e21, -1.25, Number.MAX_SAFE_INTEGER, 0.1 + 0.2, Number.NaN, Infinity, -Infinity]) {
    t.equal(numberJson(v), JSON.stringify(v) ?? 'null', String(v))
  }
  let seed = 3
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  let agreed = 0
  for (let n = 0; n < 50_000; n++) {
    const v = [Math.round(next() * 1e6) / 100, next() * 1000, Math.round(next() * 1e4) / 1000, Math.round(next() * 100) / 10][n % 4]!
    if (numberJson(v) === JSON.stringify(v)) agreed++
    else t.fail(`differs on ${v}`)
  }
  t.equal(agreed, 50_000, 'agrees on 50,000 generated values')
})

t.test('a template below the level writes nothing; a template naming a field twice is refused', async (t) => {
  const lines: string[] = []
  jsonLogger({ level: 'warn', write: (l) => lines.push(l) }).template('info', 'request', ['a'])(['x'])
  t.equal(lines.length, 0)
  t.throws(() => jsonLogger({ level: 'info', write: () => {} }).template('info', 'request', ['a', 'a']))
})

t.test('the time of a line is the ISO 8601 of the moment it is written, to the millisecond', async (t) => {
  const lines: string[] = []
  const log = jsonLogger({ level: 'info', write: (l) => lines.push(l) })
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  for (const at of [Date.UTC(2026, 11, 5, 23, 59, 59, 999), Date.UTC(2026, 11, 6, 0, 0, 0, 0), Date.UTC(2026, 11, 6, 0, 0, 0, 7), Date.UTC(2026, 11, 6, 0, 0, 0, 42), Date.UTC(2026, 11, 6, 0, 0, 1, 500)]) {
    Date.now = () => at
    log.info('x')
    t.equal((JSON.parse(lines.at(-1)!) as { time: string }).time, new Date(at).toISOString())
  }
})

t.test('stdout gets every line once, whole and in order, batched, including one too long for a batch and those pending at exit', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const logger = fileURLToPath(new URL('../../../core/logger.ts', import.meta.url))
  const script = `
    import { jsonLogger } from ${JSON.stringify(logger)}
    const log = jsonLogger({ level: 'info' })
    const line = log.template('info', 'request', ['n', 'text'])
    for (let i = 0; i < 2000; i++) line([i, 'é'.repeat(i % 40)])
    log.info('long', { text: 'x'.repeat(100000) })
    await new Promise((r) => setTimeout(r, 30))
    for (let i = 2000; i < 2010; i++) line([i, 'after a pause'])
    log.info('last')
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 24 })
  const lines = out.split('\n')
  t.equal(lines.pop(), '', 'ends with a line feed')
  t.equal(lines.length, 2012)
  const parsed = lines.map((l) => JSON.parse(l) as { msg: string; n?: number; text?: string })
  t.same(parsed.slice(0, 2000).map((p) => p.n), Array.from({ length: 2000 }, (_, i) => i))
  t.equal(parsed[1999]!.text, 'é'.repeat(1999 % 40))
  t.equal(parsed[2000]!.text!.length, 100000)
  t.same(parsed.slice(2001, 2011).map((p) => p.n), Array.from({ length: 10 }, (_, i) => 2000 + i))
  t.equal(parsed[2011]!.msg, 'last')
})
