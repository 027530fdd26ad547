import t from 'tap'
import { passwordHasher } from '../../../core/password.ts'

// logN 14 (16 MiB) keeps the suite fast; the code path is the one used with OWASP's 17.
const hasher = passwordHasher({ logN: 14 })

t.test('the right password verifies and a wrong one does not', async (t) => {
  const stored = await hasher.hash('correct horse battery staple')
  t.equal(await hasher.verify('correct horse battery staple', stored), true)
  t.equal(await hasher.verify('correct horse battery stapl', stored), false)
  t.equal(await hasher.verify('Correct horse battery staple', stored), false)
  t.equal(await hasher.verify('', stored), false)
})

t.test('the hash string stores its algorithm and parameters with a fresh salt', async (t) => {
  const a = await hasher.hash('pw')
  const b = await hasher.hash('pw')
  const parts = a.split('$')
  t.equal(parts.length, 6)
  t.same(parts.slice(0, 4), ['scrypt', '14', '8', '1'])
  t.equal(Buffer.from(parts[4]!, 'base64url').length, 16, '16-byte salt')
  t.equal(Buffer.from(parts[5]!, 'base64url').length, 32, '32-byte derived key')
  t.not(a, b, 'two hashes of one password differ')
})

t.test('a hash is verified with its own stored parameters, not the current ones', async (t) => {
  const stored = await hasher.hash('pw')
  const stronger = passwordHasher({ logN: 15 })
  t.equal(await stronger.verify('pw', stored), true)
  t.equal(await stronger.verify('pw2', stored), false)
})

t.test('passwords are compared after NFKC normalisation', async (t) => {
  const stored = await hasher.hash('caf\u00e9')
  t.equal(await hasher.verify('cafe\u0301', stored), true)
})

t.test('a stored hash it cannot parse or use verifies false instead of throwing', async (t) => {
  const garbage = [
    '',
    'not-a-hash',
    '$2b$12$abcdefghijklmnopqrstuuSx1bqjFvVmIIoQj1OmVy8s7ZgG5Uy1e',
    'scrypt$14$8$1$c2FsdA',
    'scrypt$x$8$1$c2FsdA$aGFzaA',
    'scrypt$0$8$1$c2FsdA$aGFzaA',
    'scrypt$-1$8$1$c2FsdA$aGFzaA',
    'scrypt$14.5$8$1$c2FsdA$aGFzaA',
    'scrypt$23$8$1$c2FsdA$aGFzaA',
    'scrypt$14$8$999999999$c2FsdA$aGFzaA',
    'scrypt$14$100000$1$c2FsdA$aGFzaA',
    'scrypt$14$8$1$c2FsdA$',
    'scrypt$14$8$1$!!$!!',
    'argon2id$14$8$1$c2FsdA$aGFzaA',
  ]
  for (const stored of garbage) {
    t.equal(await hasher.verify('pw', stored), false, JSON.stringify(stored))
  }
})

t.test('verifyDummy always answers false', async (t) => {
  t.equal(await hasher.verifyDummy('keygate-dummy-password'), false)
  t.equal(await hasher.verifyDummy('anything'), false)
})

t.test('past its queue depth a hash fails at once with PASSWORD_HASH_BUSY, and the hasher recovers', async (t) => {
  const hasher = passwordHasher({ logN: 14, concurrency: 1, maxQueue: 2 })
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => hasher.verifyDummy('guess')))
  const busy = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'PASSWORD_HASH_BUSY')
  t.ok(busy.length >= 3, `${busy.length} of 6 refused (1 running, 2 queued)`)
  t.equal(await hasher.verifyDummy('guess'), false, 'afterwards a check runs again (a refused first hash is not remembered)')
  t.ok(await hasher.verify('pw', await hasher.hash('pw')))
})
