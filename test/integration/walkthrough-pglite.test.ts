import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { call, keygateOnPglite } from '../helpers/keygate.ts'
import { assertNoSecretLogged, walkthrough } from '../helpers/walkthrough.ts'

t.test('the walkthrough works on the embedded database, and its data survives a restart', async (t) => {
  // An empty directory, as on a fresh checkout: the first start creates the database (initdb) itself.
  const first = await keygateOnPglite({}, mkdtempSync(join(tmpdir(), 'keygate-test-')))
  // close() is idempotent: this also stops the instance when an assertion above the restart throws.
  t.teardown(async () => { await first.close(); first.removeData() })
  const secrets = await walkthrough(t, first.url)
  assertNoSecretLogged(t, first.logs, secrets)
  const [, , refresh] = secrets
  const keyCreatedBefore = await call(first.url, 'POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'correct horse battery staple' } })
  const newKey = await call(first.url, 'POST', '/api/v1/auth/api-key', { token: keyCreatedBefore.json.access_token, body: { name: 'survivor' } })
  t.equal(newKey.status, 200)
  await first.close()

  const second = await keygateOnPglite({}, first.dataDir)
  t.teardown(() => second.close())
  const me = await call(second.url, 'GET', '/api/v1/auth/me', { token: newKey.json.api_key })
  t.equal(me.status, 200, 'a key created before the restart works after it')
  t.equal(me.json.username, 'alice')
  const keys = await call(second.url, 'GET', '/api/v1/auth/api-keys?include_revoked=true', { token: newKey.json.api_key })
  t.equal(keys.json.length, 2, 'the revoked key and the new one are both still listed')
  t.ok(keys.json.some((k: { revoked_at: string | null }) => k.revoked_at !== null), 'the revocation survived too')
  const refreshed = await call(second.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: refresh } })
  t.equal(refreshed.status, 200, 'a refresh token issued before the restart still rotates')
})

t.test('a second process cannot open a data directory in use', async (t) => {
  const first = await keygateOnPglite()
  t.teardown(async () => { await first.close(); first.removeData() })
  const { startKeygate } = await import('../../gateway/main.ts')
  const { writeFileSync } = await import('node:fs')
  // Pretend another live process (our parent) owns the lock, as the CLI would see the running gateway.
  writeFileSync(`${first.dataDir}/keygate.lock`, String(process.ppid))
  await t.rejects(startKeygate({ KEYGATE_DATA_DIR: first.dataDir, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'silent' }), /in use by process/)
  writeFileSync(`${first.dataDir}/keygate.lock`, String(process.pid))
})
