import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { manualClock } from '../../../core/clock.ts'
import { identitySigner, type IdentityInput } from '../../../core/identity-signer.ts'
import { generateSigningKeyPem, loadSigningKey, type SigningAlg } from '../../../core/signing-keys.ts'

const INPUT: IdentityInput = { aud: 'documents', sub: 'user-1', username: 'alice', auth: 'api_key', key_id: 'key-1', scopes: ['documents:read'] }

const decode = (part: string | undefined) => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>

for (const alg of ['EdDSA', 'ES256'] as const satisfies readonly SigningAlg[]) {
  t.test(`${alg}: the assertion carries the key's alg and kid and the claims with iss, iat, exp and jti`, async (t) => {
    const clock = manualClock()
    const key = loadSigningKey(generateSigningKeyPem(alg))
    const signer = identitySigner({ keys: [key], issuer: 'keygate', ttlSec: 60, clock })
    const { value, exp } = signer.sign(INPUT)
    const [h, p, s] = value.split('.')
    t.same(decode(h), { alg, kid: key.kid, typ: 'JWT' })
    const claims = decode(p)
    const iat = Math.floor(clock.now() / 1000)
    t.match(claims, { ...INPUT, iss: 'keygate', iat, exp: iat + 60 })
    t.equal(exp, iat + 60)
    t.match(claims.jti, /^[0-9a-f-]{36}$/)
    t.equal(Buffer.from(s ?? '', 'base64url').length, 64, 'raw 64-byte signature (r||s for ES256)')
    t.not(decode(signer.sign(INPUT).value.split('.')[1]).jti, claims.jti, 'every assertion has its own jti')
  })

  t.test(`${alg}: an assertion verifies with the independent jose library against the published key set`, async (t) => {
    const clock = manualClock()
    const signer = identitySigner({ keys: [loadSigningKey(generateSigningKeyPem(alg))], issuer: 'keygate', ttlSec: 60, clock })
    const { value } = signer.sign(INPUT)
    const { payload, protectedHeader } = await jwtVerify(value, createLocalJWKSet(signer.jwks()), {
      issuer: 'keygate',
      audience: 'documents',
      algorithms: [alg],
      currentDate: new Date(clock.now()),
    })
    t.equal(protectedHeader.alg, alg)
    t.equal(payload.sub, 'user-1')
    t.equal(payload.username, 'alice')
    t.same(payload.scopes, ['documents:read'])
  })
}

t.test('the published key set lists every key, the signing one first, with no private part', async (t) => {
  const current = loadSigningKey(generateSigningKeyPem('EdDSA'))
  const previous = loadSigningKey(generateSigningKeyPem('ES256'))
  const signer = identitySigner({ keys: [current, previous], issuer: 'keygate', ttlSec: 60, clock: manualClock() })
  const { keys } = signer.jwks()
  t.same(keys.map((k) => k.kid), [current.kid, previous.kid])
  t.same(keys.map((k) => k.alg), ['EdDSA', 'ES256'])
  for (const k of keys) {
    t.equal(k.use, 'sig')
    t.notOk('d' in k, `${k.kid} has no private exponent`)
  }
  t.equal(decode(signer.sign(INPUT).value.split('.')[0]).kid, current.kid, 'signs with the first key')
})

t.test('the kid is the RFC 7638 thumbprint: the same key always gets the same kid', async (t) => {
  const pem = generateSigningKeyPem('ES256')
  t.equal(loadSigningKey(pem).kid, loadSigningKey(pem).kid)
  t.not(loadSigningKey(generateSigningKeyPem('ES256')).kid, loadSigningKey(pem).kid)
  t.match(loadSigningKey(pem).kid, /^[A-Za-z0-9_-]{43}$/)
})

t.test('a signer needs at least one key', async (t) => {
  t.throws(() => identitySigner({ keys: [], issuer: 'keygate', ttlSec: 60, clock: manualClock() }), RangeError)
})
