import { spawn } from 'node:child_process'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../../helpers/keygate.ts'
import { routeFile } from '../../helpers/upstreams.ts'

/**
 * What an upstream team does: plain Node (no TypeScript loader), `import { requireIdentity } from '@keygate/verify'`,
 * an Express app, the gateway's JWKS URL. Runs as its own process.
 */
const SERVICE = `
import express from 'express'
import { requireIdentity } from '@keygate/verify'
const app = express()
app.use(requireIdentity({ jwksUrl: process.env.JWKS_URL, audience: 'plain', issuer: 'keygate' }))
app.get('/plain/whoami', (req, res) => res.json({ user: req.identity.username, auth: req.identity.auth, key: req.identity.keyId }))
const server = app.listen(0, '127.0.0.1', () => console.log('port=' + server.address().port))
`

t.test('an Express service trusts Keygate with one import of the built package', async (t) => {
  // The service needs the gateway's URL, the gateway needs the service's: start a gateway first on a
  // placeholder route file, learn its port, then start the service and reload the routes.
  const file = routeFile('upstreams:\n  admin: { url: "internal:admin" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }\n  - { name: auth, prefix: /api/v1/auth, upstream: admin }\n')
  const kg = await keygateOnPostgres('verify_pkg', { KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_CONFIG_WATCH: 'false' })
  const jwksUrl = `${kg.url}/.well-known/jwks.json`
  const child = spawn(process.execPath, ['--input-type=module', '-e', SERVICE], { env: { ...process.env, JWKS_URL: jwksUrl }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => { child.kill(); await kg.close(); await kg.db.drop() })
  const port = await new Promise<string>((resolve) => child.stdout.on('data', (d: Buffer) => { const m = /port=(\d+)/.exec(d.toString()); if (m) resolve(m[1]!) }))
  const { writeFileSync, readFileSync } = await import('node:fs')
  writeFileSync(file, readFileSync(file, 'utf8').replace('routes:', `  plain: { url: "http://127.0.0.1:${port}" }\nroutes:`) + '  - { name: plain, prefix: /plain, upstream: plain }\n')
  t.equal(kg.reload(), true)

  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const through = await call(kg.url, 'GET', '/plain/whoami', { token: jwt })
  t.equal(through.status, 200, 'a request through the gateway is trusted')
  t.same(through.json, { user: BOOTSTRAP.username, auth: 'jwt', key: null })
  const direct = await call(`http://127.0.0.1:${port}`, 'GET', '/plain/whoami', { headers: { 'x-keygate-identity': 'forged.by.client' } })
  t.equal(direct.status, 401, 'a request around the gateway is not')
  t.equal(direct.json.code, 'IDENTITY_MALFORMED')
  t.equal(direct.headers.get('content-type'), 'application/problem+json')
  const none = await call(`http://127.0.0.1:${port}`, 'GET', '/plain/whoami')
  t.equal(none.json.code, 'IDENTITY_MISSING')
})
