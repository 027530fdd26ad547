import t from 'tap'
import { createHmac, createPublicKey, sign as cryptoSign } from 'node:crypto'
import { JwksUnavailableError, type KeySource } from '../src/jwks-source.ts'
import { verifyIdentity, type VerifyIdentityOptions } from '../src/verify-identity.ts'
import { generateKey, identitySigner, manualClock, type IdentityInput, type SigningKey } from './signer.ts'

const INPUT: IdentityInput = { aud: 'documents', sub: 'user-1', username: 'alice', auth: 'jwt', sid: 'session-1', scopes: ['*'] }
const ed = generateKey('EdDSA')
const es = generateKey('ES256')
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>

function setup(key: SigningKey = ed) {
  const clock = manualClock()
  const signer = identitySigner({ keys: [key], issuer: 'keygate', ttlSec: 60, clock })
  const options = (extra: Partial<VerifyIdentityOptions> = {}): VerifyIdentityOptions => ({ keys: signer.jwks().keys, audience: 'documents', now: clock.now, ...extra })
  return { clock, signer, options }
}

/** Signs `header.claims` with `key` the way the signer does, for tokens the signer would never make. */
function signWith(key: SigningKey, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(claims)}`
  const sig = key.alg === 'EdDSA' ? cryptoSign(null, Buffer.from(input), key.privateKey) : cryptoSign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
  return `${input}.${sig.toString('base64url')}`
}

for (const key of [ed, es]) {
  t.test(`${key.alg}: a valid identity verifies with its claims`, async (t) => {
    const { signer, options, clock } = setup(key)
    const { value, exp } = signer.sign({ ...INPUT, auth: 'api_key', key_id: 'key-9', sid: undefined, scopes: ['documents:read', 'documents:write'] })
    const verdict = await verifyIdentity(value, options())
    if (!verdict.ok) return t.fail(`denied: ${verdict.code}`)
    const iat = Math.floor(clock.now() / 1000)
    t.match(verdict.identity, {
      sub: 'user-1', username: 'alice', auth: 'api_key', keyId: 'key-9', sessionId: null,
      scopes: ['documents:read', 'documents:write'], issuer: 'keygate', audience: 'documents', issuedAt: iat, expiresAt: exp,
    })
    t.match(verdict.identity.jti, /^[0-9a-f-]{36}$/)
  })
}

t.test('a JWT identity carries its session id', async (t) => {
  const { signer, options } = setup()
  const verdict = await verifyIdentity(signer.sign(INPUT).value, options())
  t.equal(verdict.ok && verdict.identity.sessionId, 'session-1')
  t.equal(verdict.ok && verdict.identity.keyId, null)
})

t.test('a missing identity is IDENTITY_MISSING', async (t) => {
  const { options } = setup()
  t.same(await verifyIdentity(undefined, options()), { ok: false, code: 'IDENTITY_MISSING' })
  t.same(await verifyIdentity('', options()), { ok: false, code: 'IDENTITY_MISSING' })
})

t.test('garbage is IDENTITY_MALFORMED', async (t) => {
  const { signer, options } = setup()
  const valid = signer.sign(INPUT).value
  const [h, p, s] = valid.split('.') as [string, string, string]
  const cases = ['garbage', 'a.b', 'a.b.c.d', `${h}.${p}`, `.${p}.${s}`, `${h}..${s}`, `${h}.!!.${s}`, `${h}.${p}.${s}=`, `${b64('just a string')}.${p}.${s}`, `${h}.${b64([1, 2])}.${s}`, 'x'.repeat(9000)]
  for (const value of cases) t.same(await verifyIdentity(value, options()), { ok: false, code: 'IDENTITY_MALFORMED' }, value.slice(0, 40))
  t.same(await verifyIdentity([valid, valid], options()), { ok: false, code: 'IDENTITY_MALFORMED' }, 'a repeated header')
})

t.test('a bad signature or a tampered payload is IDENTITY_SIGNATURE_INVALID', async (t) => {
  for (const key of [ed, es]) {
    const { signer, options } = setup(key)
    const [h, p, s] = signer.sign(INPUT).value.split('.') as [string, string, string]
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
    t.same(await verifyIdentity(`${h}.${p}.${flipped}`, options()), { ok: false, code: 'IDENTITY_SIGNATURE_INVALID' }, `${key.alg} flipped signature`)
    const tampered = b64({ ...decode(p), sub: 'user-2', scopes: ['admin'] })
    t.same(await verifyIdentity(`${h}.${tampered}.${s}`, options()), { ok: false, code: 'IDENTITY_SIGNATURE_INVALID' }, `${key.alg} tampered payload`)
    t.same(await verifyIdentity(`${h}.${p}.${s.slice(0, 20)}`, options()), { ok: false, code: 'IDENTITY_SIGNATURE_INVALID' }, `${key.alg} truncated signature`)
    t.same(await verifyIdentity(`${h}.${p}.`, options()), { ok: false, code: 'IDENTITY_SIGNATURE_INVALID' }, `${key.alg} signature stripped`)
  }
})

t.test('a kid that is not in the key set is IDENTITY_KEY_UNKNOWN', async (t) => {
  const { options } = setup()
  const stranger = identitySigner({ keys: [generateKey('EdDSA')], issuer: 'keygate', ttlSec: 60, clock: manualClock() })
  t.same(await verifyIdentity(stranger.sign(INPUT).value, options()), { ok: false, code: 'IDENTITY_KEY_UNKNOWN' })
  const [, p, s] = stranger.sign(INPUT).value.split('.') as [string, string, string]
  t.same(await verifyIdentity(`${b64({ alg: 'EdDSA', typ: 'JWT' })}.${p}.${s}`, options()), { ok: false, code: 'IDENTITY_KEY_UNKNOWN' }, 'no kid at all')
})

t.test('an identity is valid until exp plus the 5 s tolerance and IDENTITY_EXPIRED from then on', async (t) => {
  const { signer, options, clock } = setup()
  const { value, exp } = signer.sign(INPUT)
  clock.set(exp * 1000 + 4_000)
  t.equal((await verifyIdentity(value, options())).ok, true, 'within the tolerance')
  clock.set(exp * 1000 + 5_000)
  t.same(await verifyIdentity(value, options()), { ok: false, code: 'IDENTITY_EXPIRED' })
  t.same(await verifyIdentity(value, options({ clockToleranceSec: 0, now: () => exp * 1000 })), { ok: false, code: 'IDENTITY_EXPIRED' }, 'exp itself is already expired')
})

t.test('an identity issued in the future is IDENTITY_NOT_YET_VALID', async (t) => {
  const { options, clock } = setup()
  const ahead = manualClock(clock.now() + 60_000)
  const future = identitySigner({ keys: [ed], issuer: 'keygate', ttlSec: 60, clock: ahead })
  t.same(await verifyIdentity(future.sign(INPUT).value, options()), { ok: false, code: 'IDENTITY_NOT_YET_VALID' })
  const slightlyAhead = identitySigner({ keys: [ed], issuer: 'keygate', ttlSec: 60, clock: manualClock(clock.now() + 3_000) })
  t.equal((await verifyIdentity(slightlyAhead.sign(INPUT).value, options())).ok, true, 'clock skew within the tolerance is accepted')
  const iat = Math.floor(clock.now() / 1000)
  const nbf = signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...INPUT, iss: 'keygate', iat, exp: iat + 600, nbf: iat + 300 })
  t.same(await verifyIdentity(nbf, options()), { ok: false, code: 'IDENTITY_NOT_YET_VALID' }, 'nbf in the future')
})

t.test('an identity minted for another upstream is IDENTITY_AUDIENCE_MISMATCH', async (t) => {
  const { signer, options } = setup()
  t.same(await verifyIdentity(signer.sign(INPUT).value, options({ audience: 'conversations' })), { ok: false, code: 'IDENTITY_AUDIENCE_MISMATCH' })
  t.same(await verifyIdentity(signer.sign({ ...INPUT, aud: 'conversations' }).value, options()), { ok: false, code: 'IDENTITY_AUDIENCE_MISMATCH' })
})

t.test('an identity from another issuer is IDENTITY_ISSUER_MISMATCH', async (t) => {
  const { signer, options } = setup()
  t.same(await verifyIdentity(signer.sign(INPUT).value, options({ issuer: 'other-gateway' })), { ok: false, code: 'IDENTITY_ISSUER_MISMATCH' })
  const clock = manualClock()
  const other = identitySigner({ keys: [ed], issuer: 'other-gateway', ttlSec: 60, clock })
  t.same(await verifyIdentity(other.sign(INPUT).value, options()), { ok: false, code: 'IDENTITY_ISSUER_MISMATCH' })
})

t.test('an alg:none identity is IDENTITY_ALG_UNSUPPORTED', async (t) => {
  const { signer, options } = setup()
  const [, p] = signer.sign(INPUT).value.split('.') as [string, string]
  const none = `${b64({ alg: 'none', kid: ed.kid, typ: 'JWT' })}.${p}.`
  t.same(await verifyIdentity(none, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' })
  t.same(await verifyIdentity(`${b64({ alg: 'none', kid: ed.kid, typ: 'JWT' })}.${p}.AA`, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' }, 'with a dummy signature')
  t.same(await verifyIdentity(`${b64({ alg: 'None', kid: ed.kid })}.${p}.AA`, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' })
  t.same(await verifyIdentity(`${b64({ kid: ed.kid })}.${p}.AA`, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' }, 'no alg')
})

t.test('an HS256 identity signed with the public key as the HMAC secret is IDENTITY_ALG_UNSUPPORTED', async (t) => {
  for (const key of [ed, es]) {
    const { signer, options } = setup(key)
    const [, p] = signer.sign(INPUT).value.split('.') as [string, string]
    const h = b64({ alg: 'HS256', kid: key.kid, typ: 'JWT' })
    const publicPem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }).toString()
    for (const secret of [publicPem, JSON.stringify(signer.jwks().keys[0])]) {
      const forged = `${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`
      t.same(await verifyIdentity(forged, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' }, key.alg)
    }
  }
})

t.test('the key decides the algorithm: ES256 under an Ed25519 kid is IDENTITY_ALG_UNSUPPORTED', async (t) => {
  const { signer, options, clock } = setup(ed)
  const iat = Math.floor(clock.now() / 1000)
  const claims = { ...INPUT, iss: 'keygate', iat, exp: iat + 60 }
  const confused = signWith(es, { alg: 'ES256', kid: ed.kid }, claims)
  t.same(await verifyIdentity(confused, options()), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' })
  const keys = [...signer.jwks().keys, ...identitySigner({ keys: [es], issuer: 'keygate', ttlSec: 60, clock }).jwks().keys]
  t.same(await verifyIdentity(signWith(ed, { alg: 'EdDSA', kid: es.kid }, claims), options({ keys })), { ok: false, code: 'IDENTITY_ALG_UNSUPPORTED' })
  t.equal((await verifyIdentity(signWith(es, { alg: 'ES256', kid: es.kid }, claims), options({ keys }))).ok, true, 'the ES256 key with ES256 verifies (control)')
})

t.test('an identity without exp or with a bad auth is IDENTITY_MALFORMED even when signed', async (t) => {
  const { options, clock } = setup()
  const iat = Math.floor(clock.now() / 1000)
  t.same(await verifyIdentity(signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...INPUT, iss: 'keygate', iat }), options()), { ok: false, code: 'IDENTITY_MALFORMED' })
  t.same(await verifyIdentity(signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...INPUT, auth: 'password', iss: 'keygate', iat, exp: iat + 60 }), options()), { ok: false, code: 'IDENTITY_MALFORMED' })
})

t.test('keys can be given as a function, so a rotation is seen without rebuilding the verifier', async (t) => {
  const { signer, options } = setup()
  let current: ReturnType<typeof signer.jwks>['keys'] = []
  const keys = () => current
  const value = signer.sign(INPUT).value
  t.same(await verifyIdentity(value, options({ keys })), { ok: false, code: 'IDENTITY_KEY_UNKNOWN' })
  current = signer.jwks().keys
  t.equal((await verifyIdentity(value, options({ keys }))).ok, true)
})

t.test('a key set that cannot be loaded is IDENTITY_KEYS_UNAVAILABLE, not a rejection of the caller', async (t) => {
  const { signer, options } = setup()
  const down: KeySource = { get: async () => { throw new JwksUnavailableError('http://keygate/.well-known/jwks.json', new Error('ECONNREFUSED')) } }
  t.same(await verifyIdentity(signer.sign(INPUT).value, options({ keys: down })), { ok: false, code: 'IDENTITY_KEYS_UNAVAILABLE' })
})

t.test('a request-bound identity verifies only for its method and path prefix', async (t) => {
  const key = generateKey('EdDSA')
  const clock = manualClock()
  const signer = identitySigner({ keys: [key], issuer: 'keygate', ttlSec: 60, clock })
  const { value } = signer.sign({ aud: 'documents', sub: 'u1', username: 'alice', auth: 'jwt', scopes: ['*'], htm: 'POST', htp: '/api/v1/documents' })
  const opts = (method: string, path: string) => ({ keys: signer.jwks().keys, audience: 'documents', now: clock.now, request: { method, path } })
  t.equal((await verifyIdentity(value, opts('POST', '/api/v1/documents/42?x=1'))).ok, true, 'same method, under the prefix')
  t.same(await verifyIdentity(value, opts('DELETE', '/api/v1/documents/42')), { ok: false, code: 'IDENTITY_BINDING_MISMATCH' }, 'another method')
  t.same(await verifyIdentity(value, opts('POST', '/api/v1/documentsX')), { ok: false, code: 'IDENTITY_BINDING_MISMATCH' }, 'another path')
  const unbound = signer.sign({ aud: 'documents', sub: 'u1', username: 'alice', auth: 'jwt', scopes: ['*'] }).value
  t.same(await verifyIdentity(unbound, { ...opts('POST', '/x'), requireBinding: true }), { ok: false, code: 'IDENTITY_BINDING_MISMATCH' }, 'requireBinding refuses an unbound assertion')
})
