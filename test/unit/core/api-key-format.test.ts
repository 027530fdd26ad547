import t from 'tap'
import { createHash } from 'node:crypto'
import { apiKeyFormat, displayApiKey, hashApiKey } from '../../../core/api-key-format.ts'

const live = apiKeyFormat()
const test = apiKeyFormat('sk_test_')

/** Replaces the character at `index` with another base62 character. */
function mutate(key: string, index: number): string {
  const c = key[index]
  const replacement = c === 'A' ? 'B' : 'A'
  return key.slice(0, index) + replacement + key.slice(index + 1)
}

t.test('a generated key is well formed, carries the prefix and is 57 characters for sk_live_', async (t) => {
  const { key, hash, display } = live.generate()
  t.ok(key.startsWith('sk_live_'))
  t.equal(key.length, 57)
  t.match(key, /^sk_live_[0-9A-Za-z]{49}$/)
  t.equal(live.isWellFormed(key), true)
  t.equal(hash, hashApiKey(key))
  t.equal(display, displayApiKey(key, 'sk_live_'))
})

t.test('generated keys are unique', async (t) => {
  const keys = new Set(Array.from({ length: 500 }, () => live.generate().key))
  t.equal(keys.size, 500)
})

t.test('every generated key passes its own checksum', async (t) => {
  const rejected = Array.from({ length: 200 }, () => live.generate().key).filter((key) => !live.isWellFormed(key))
  t.same(rejected.map((key) => displayApiKey(key, 'sk_live_')), [])
})

t.test('a key whose body or checksum differs by one character is rejected', async (t) => {
  const { key } = live.generate()
  t.equal(live.isWellFormed(mutate(key, 8)), false, 'first body character')
  t.equal(live.isWellFormed(mutate(key, 30)), false, 'middle body character')
  t.equal(live.isWellFormed(mutate(key, 50)), false, 'last body character')
  t.equal(live.isWellFormed(mutate(key, 51)), false, 'first checksum character')
  t.equal(live.isWellFormed(mutate(key, 56)), false, 'last checksum character')
})

t.test('a key of another environment is rejected, even with a valid checksum of its own', async (t) => {
  const testKey = test.generate().key
  t.equal(test.isWellFormed(testKey), true)
  t.equal(live.isWellFormed(testKey), false)
  t.equal(live.isWellFormed('sk_live_' + testKey.slice('sk_test_'.length)), false, 'the checksum covers the prefix')
  t.equal(test.isWellFormed(live.generate().key), false)
})

t.test('whitespace, truncation, extension and foreign characters are rejected', async (t) => {
  const { key } = live.generate()
  t.equal(live.isWellFormed(` ${key}`), false, 'leading space')
  t.equal(live.isWellFormed(`${key} `), false, 'trailing space')
  t.equal(live.isWellFormed(`${key}\n`), false, 'trailing newline')
  t.equal(live.isWellFormed(key.slice(0, -1)), false, 'one character short')
  t.equal(live.isWellFormed(`${key}A`), false, 'one character long')
  t.equal(live.isWellFormed(key.slice(0, 20) + '-' + key.slice(21)), false, 'non-base62 character')
  t.equal(live.isWellFormed(key.slice(0, 20) + ' ' + key.slice(21)), false, 'space inside')
  t.equal(live.isWellFormed(key.toUpperCase()), false, 'case changed')
  t.equal(live.isWellFormed(''), false, 'empty')
  t.equal(live.isWellFormed('sk_live_'), false, 'prefix only')
})

t.test('looksLikeKey claims anything starting with sk_, well formed or not', async (t) => {
  t.equal(live.looksLikeKey('sk_live_garbage'), true)
  t.equal(live.looksLikeKey('sk_test_x'), true)
  t.equal(live.looksLikeKey('eyJhbGciOi.x.y'), false)
  t.equal(live.looksLikeKey('rt_abc'), false)
})

t.test('the hash is the lowercase hex SHA-256 of the whole key', async (t) => {
  const { key, hash } = live.generate()
  t.match(hash, /^[0-9a-f]{64}$/)
  t.equal(hash, createHash('sha256').update(key).digest('hex'))
  t.not(hashApiKey(mutate(key, 30)), hash)
})

t.test('the display form shows the prefix, four characters each side and never the secret middle', async (t) => {
  const { key, display } = live.generate()
  t.equal(display, `sk_live_${key.slice(8, 12)}…${key.slice(-4)}`)
  t.equal(display.length, 'sk_live_'.length + 4 + 1 + 4)
  const middle = key.slice(12, -4)
  t.notOk(display.includes(middle), 'the middle does not appear')
  const shown = display.slice('sk_live_'.length)
  const leaks: number[] = []
  for (let i = 12; i + 5 <= key.length - 4; i++) if (shown.includes(key.slice(i, i + 5))) leaks.push(i)
  t.same(leaks, [], 'no run of five hidden characters appears in the display form')
})

t.test('a prefix that is not sk_<env>_ is refused at construction', async (t) => {
  t.throws(() => apiKeyFormat('pk_live_'), RangeError)
  t.throws(() => apiKeyFormat('sk_live'), RangeError)
  t.throws(() => apiKeyFormat('sk_LIVE_'), RangeError)
})
