import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { BOOTSTRAP, call } from './keygate.ts'

/** Posts `bytes` as a multipart file upload, the way `curl -F file=@x.pdf` does. */
export async function upload(base: string, token: string, bytes: Buffer) {
  const form = new FormData()
  form.append('file', new Blob([new Uint8Array(bytes)], { type: 'application/pdf' }), 'x.pdf')
  const res = await fetch(`${base}/api/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: res.status, json: (await res.json()) as any }
}

/**
 * The README's walkthrough, step by step, against a running Keygate at `base`. Returns the secrets it saw so
 * the caller can check that none of them reached a log line.
 */
export async function walkthrough(t: Test, base: string): Promise<string[]> {
  const login = await call(base, 'POST', '/api/v1/auth/login', { body: { username: BOOTSTRAP.username, password: BOOTSTRAP.password } })
  t.equal(login.status, 200, 'login succeeds')
  t.match(login.json, { token_type: 'bearer', expires_in: 900, user: { username: BOOTSTRAP.username, is_active: true, is_superuser: true } })
  t.hasStrict(Object.keys(login.json.user).sort(), ['api_key_name', 'avatar_url', 'bio', 'created_at', 'daily_message_limit', 'default_llm_provider', 'default_profile_id', 'email', 'full_name', 'id', 'is_active', 'is_superuser', 'is_verified', 'last_login_at', 'max_file_size_mb', 'monthly_message_limit', 'phone_number', 'updated_at', 'username'], 'the user has the contract fields')
  t.match(login.headers.get('set-cookie') ?? '', /refresh_token=rt_[^;]+; Path=\/api\/v1\/auth; .*HttpOnly; Secure; SameSite=Strict/, 'the refresh token is also set as a cookie')
  const jwt: string = login.json.access_token
  const refresh: string = login.json.refresh_token

  const created = await call(base, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'My API Key' } })
  t.equal(created.status, 200, 'the key is created')
  t.match(created.json, { id: /^[0-9a-f-]{36}$/, api_key: /^sk_live_[0-9A-Za-z]{49}$/, api_key_name: 'My API Key', expires_at: null })
  const key: string = created.json.api_key

  const second = await call(base, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'Another' } })
  t.equal(second.status, 409, 'a second key is refused by default')
  t.equal(second.json.code, 'KEY_LIMIT_REACHED')
  t.equal(second.json.detail, 'User already has an API key. Revoke existing key first.')

  for (const [label, token] of [['API key', key], ['JWT', jwt]] as const) {
    const me = await call(base, 'GET', '/api/v1/auth/me', { token })
    t.equal(me.status, 200, `me answers with the ${label}`)
    t.equal(me.json.username, BOOTSTRAP.username)
    for (const path of ['/api/v1/conversations', '/api/v1/conversations/']) {
      const conv = await call(base, 'GET', path, { token })
      t.equal(conv.status, 200, `${path} answers with the ${label}`)
      t.match(conv.json.verified_identity, { username: BOOTSTRAP.username, auth: label === 'JWT' ? 'jwt' : 'api_key', audience: 'conversations' })
    }
  }

  const file = randomBytes(3 * 1024 * 1024 + 17)
  const up = await upload(base, key, file)
  t.equal(up.status, 201, 'the upload reaches the document service')
  t.equal(up.json.bytes, file.length, 'every byte arrived')
  t.equal(up.json.sha256, createHash('sha256').update(file).digest('hex'), 'and unchanged')

  const list = await call(base, 'GET', '/api/v1/auth/api-keys', { token: key })
  t.equal(list.status, 200)
  t.equal(list.json.length, 1)
  t.match(list.json[0], { id: created.json.id, api_key_name: 'My API Key', revoked_at: null })
  t.match(list.json[0].api_key, /^sk_live_[0-9A-Za-z]{4}…[0-9A-Za-z]{4}$/, 'the listing shows the display form')
  t.notOk(list.text.includes(key.slice(8, 40)), 'the listing never holds the secret')

  const revoked = await call(base, 'DELETE', '/api/v1/auth/api-key', { token: key })
  t.equal(revoked.status, 200)
  t.same(revoked.json, { message: 'API key revoked successfully' })

  const after = await call(base, 'GET', '/api/v1/conversations', { token: key })
  t.equal(after.status, 401, 'the revoked key is refused on the very next request')
  t.equal(after.json.code, 'KEY_REVOKED')
  t.equal(after.json.detail, 'Invalid token or API key')
  t.equal(after.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  t.equal(after.headers.get('content-type'), 'application/problem+json')

  const stillJwt = await call(base, 'GET', '/api/v1/conversations', { token: jwt })
  t.equal(stillJwt.status, 200, 'the JWT keeps working')
  return [key, jwt, refresh, BOOTSTRAP.password]
}

/** Fails when any line holds any of the secrets. */
export function assertNoSecretLogged(t: Test, logs: readonly string[], secrets: readonly string[]): void {
  const leaks = logs.filter((line) => secrets.some((s) => line.includes(s)))
  t.same(leaks, [], 'no log line holds a password, key or token')
  const unparsable = logs.filter((line) => { try { return typeof JSON.parse(line) !== 'object' } catch { return true } })
  t.same(unparsable, [], 'every log line is one JSON object')
  const access = logs.flatMap((line) => { try { const o = JSON.parse(line); return o?.msg === 'request' ? [o] : [] } catch { return [] } })
  t.ok(access.length > 0, 'access lines were written')
  const incomplete = access.filter((a) => !(typeof a.time === 'string' && typeof a.request_id === 'string' && typeof a.method === 'string' && Number.isInteger(a.status) && typeof a.duration_ms === 'number' && ['api_key', 'jwt', 'none'].includes(a.auth)))
  t.same(incomplete, [], 'every access line has time, request_id, method, status, duration_ms and auth')
  t.ok(access.some((a) => a.auth === 'api_key' && typeof a.key_id === 'string' && typeof a.user_id === 'string'), 'an API key request is logged with its key id and user id')
}
