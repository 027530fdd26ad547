import t from 'tap'
import { startAdminApi } from '../../admin-api/main.ts'
import { systemClock } from '../../core/clock.ts'
import { ConfigError } from '../../core/errors.ts'
import { identitySigner } from '../../core/identity-signer.ts'
import { generateSigningKeyPem, loadSigningKey } from '../../core/signing-keys.ts'
import { BOOTSTRAP, call, keygateOnPostgres, testEnv, refusedWithin } from '../helpers/keygate.ts'
import { freePort } from '../helpers/ports.ts'
import { testSchema } from '../helpers/postgres.ts'
import { VERSION } from '../../core/version.ts'
import { echoServer } from '../helpers/upstreams.ts'


t.test('the admin API on its own refuses to start without DATABASE_URL and KEYGATE_JWKS_URL, naming both', async (t) => {
  const err = await startAdminApi(testEnv({ KEYGATE_JWKS_URL: '' }), { write: () => {} }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ConfigError, 'a ConfigError')
  const problems = (err as ConfigError).problems.join('\n')
  t.match(problems, /DATABASE_URL is required/)
  t.match(problems, /KEYGATE_JWKS_URL is required/)
})

t.test('the admin API as its own process behind a gateway, on PostgreSQL without Redis', async (t) => {
  const schema = await testSchema('admin_process')
  const echo = await echoServer()
  const gatewayPort = await freePort()
  const adminLogs: string[] = []
  const admin = await startAdminApi(testEnv({
    DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema,
    KEYGATE_JWKS_URL: `http://127.0.0.1:${gatewayPort}/.well-known/jwks.json`,
    KEYGATE_MAX_KEYS_PER_USER: '10',
  }), { write: (l) => adminLogs.push(l) })
  const gateway = await keygateOnPostgres('admin_process', { PORT: String(gatewayPort), KEYGATE_ADMIN_URL: admin.url, DOCUMENTS_URL: echo.origin }, schema)
  t.teardown(async () => { await gateway.close(); await admin.close(); await echo.close(); await schema.drop() })

  const login = await call(gateway.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const jwt = login.json.access_token as string

  await t.test('the gateway routes the admin API to the other process and starts none of its own', async (t) => {
    const listening = gateway.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'keygate listening')
    t.equal(listening.admin_api, null, 'no in-process admin API')
    t.ok(adminLogs.some((l) => l.includes('"msg":"admin api listening"') && l.includes('"invalidation":"postgres"')), 'the admin API logs where it listens and how it invalidates')
  })

  await t.test('login and refresh arrive without an identity (public routes); me and API keys with the gateway\'s', async (t) => {
    t.equal(login.status, 200)
    t.equal(login.json.user.username, BOOTSTRAP.username)
    const me = await call(gateway.url, 'GET', '/api/v1/auth/me', { token: jwt })
    t.equal(me.status, 200)
    t.equal(me.json.username, BOOTSTRAP.username)
    const key = await call(gateway.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'fleet' } })
    t.equal(key.status, 200)
    t.equal((await call(gateway.url, 'GET', '/api/v1/auth/me', { token: key.json.api_key })).json.username, BOOTSTRAP.username, 'an API key reaches the admin API too')
    const refreshed = await call(gateway.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: login.json.refresh_token } })
    t.equal(refreshed.status, 200, 'refresh is public as well')
  })

  await t.test('a key revoked through the admin process is refused by the gateway that had it cached', async (t) => {
    const key = (await call(gateway.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'revoke-me' } })).json
    t.equal((await call(gateway.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'cached by the gateway')
    t.equal((await call(gateway.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })).status, 200)
    const seen = await refusedWithin(gateway.url, key.api_key, 1000)
    t.equal(seen.code, 'KEY_REVOKED', `refused ${seen.afterMs.toFixed(1)} ms after the admin process answered`)
  })

  await t.test('a logout through the admin process ends the JWT at the gateway', async (t) => {
    const session = (await call(gateway.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    t.equal((await call(gateway.url, 'GET', '/api/v1/conversations', { token: session })).status, 200)
    t.equal((await call(gateway.url, 'POST', '/api/v1/auth/logout', { token: session })).status, 200)
    t.equal((await refusedWithin(gateway.url, session, 1000)).code, 'TOKEN_REVOKED')
  })

  await t.test('security: called directly, the admin process believes nothing but a gateway-signed identity for it', async (t) => {
    const me = (await call(gateway.url, 'GET', '/api/v1/auth/me', { token: jwt })).json
    t.equal((await call(admin.url, 'GET', '/api/v1/auth/me')).json.code, 'IDENTITY_REQUIRED', 'no header')
    const plain = await call(admin.url, 'GET', '/api/v1/auth/me', { headers: { 'x-user-id': me.id, 'x-username': me.username, 'x-auth-method': 'jwt' } })
    t.equal(plain.json.code, 'IDENTITY_REQUIRED', 'plain identity headers count for nothing')
    t.equal((await call(admin.url, 'GET', '/api/v1/auth/me', { token: jwt })).json.code, 'IDENTITY_REQUIRED', 'nor does a valid JWT: only the gateway checks credentials')

    const stranger = identitySigner({ keys: [loadSigningKey(generateSigningKeyPem('EdDSA'))], issuer: 'keygate', ttlSec: 60, clock: systemClock })
    const forged = stranger.sign({ aud: 'admin', sub: me.id, username: me.username, auth: 'jwt', scopes: [] }).value
    const res = await call(admin.url, 'GET', '/api/v1/auth/me', { headers: { 'x-keygate-identity': forged } })
    t.equal(res.status, 401)
    t.equal(res.json.code, 'TOKEN_INVALID', 'signed by a key the gateway does not publish')

    // An identity the gateway really signed, but for another upstream (what that upstream could replay).
    t.equal((await call(gateway.url, 'GET', '/api/v1/documents', { token: jwt })).status, 200)
    const minted = echo.seen.at(-1)!.headers['x-keygate-identity'] as string
    t.ok(minted, 'the gateway sent the documents upstream an identity')
    const replayed = await call(admin.url, 'GET', '/api/v1/auth/me', { headers: { 'x-keygate-identity': minted } })
    t.equal(replayed.status, 401)
    t.equal(replayed.json.code, 'TOKEN_INVALID', 'an identity minted for documents is refused by the admin API')
  })

  await t.test('the admin process answers /healthz and /readyz itself', async (t) => {
    for (const path of ['/healthz', '/readyz']) t.equal((await fetch(admin.url + path)).status, 200, path)
    t.same(await (await fetch(admin.url + '/healthz')).json(), { status: 'ok', version: VERSION }, '/healthz names the version, as the gateway\'s does')
    const metrics = await fetch(`http://127.0.0.1:${admin.metricsPort}/metrics`)
    t.match(await metrics.text(), /keygate_invalidations_total\{direction="sent"\}/, 'its metrics count the invalidations it published')
  })
})

t.test('an unreachable key set is 503 IDENTITY_KEYS_UNAVAILABLE, never a 401 for the caller', async (t) => {
  const schema = await testSchema('admin_nojwks')
  const admin = await startAdminApi(testEnv({
    DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema,
    KEYGATE_JWKS_URL: `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`,
  }), { write: () => {} })
  t.teardown(async () => { await admin.close(); await schema.drop() })
  const signer = identitySigner({ keys: [loadSigningKey(generateSigningKeyPem('EdDSA'))], issuer: 'keygate', ttlSec: 60, clock: systemClock })
  const identity = signer.sign({ aud: 'admin', sub: '00000000-0000-0000-0000-000000000000', username: 'x', auth: 'jwt', scopes: [] }).value
  const res = await call(admin.url, 'GET', '/api/v1/auth/me', { headers: { 'x-keygate-identity': identity } })
  t.equal(res.status, 503)
  t.equal(res.json.code, 'IDENTITY_KEYS_UNAVAILABLE')
  t.equal((await call(admin.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).status, 200, 'public routes need no key set')
})
