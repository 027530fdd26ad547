import pg from 'pg'
import t from 'tap'
import { manualClock } from '../../core/clock.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

const HOUR = 3_600_000
const DAY = 24 * HOUR

t.test('API keys expire and roll on the injected clock', async (t) => {
  const clock = manualClock(Date.now())
  const kg = await keygateOnPostgres('lifecycle', { KEYGATE_MAX_KEYS_PER_USER: '10' }, undefined, clock)
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const forever = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'forever' } })).json

  await t.test('a key with expires_in_days works until then, and not after', async (t) => {
    const created = await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'one day', expires_in_days: 1 } })
    t.equal(created.json.expires_at, new Date(clock.now() + DAY).toISOString(), 'expires_at is a day from now')
    const key = created.json.api_key
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200)
    clock.advance(DAY)
    const after = await call(kg.url, 'GET', '/api/v1/conversations', { token: key })
    t.equal(after.status, 401)
    t.equal(after.json.code, 'KEY_EXPIRED', 'refused although its record is cached')
  })

  await t.test('a rolled key keeps working for the grace period, then stops; its successor works', async (t) => {
    const old = forever.api_key
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: old })).status, 200)
    const rolled = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${forever.id}/roll`, { token: old, body: { grace_period_seconds: 3600 } })
    t.equal(rolled.status, 200)
    t.match(rolled.json, { api_key_name: 'forever', api_key: /^sk_live_/ })
    t.not(rolled.json.api_key, old)
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: old })).status, 200, 'the old key works during the grace period')
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: rolled.json.api_key })).status, 200, 'the new key works')
    clock.advance(HOUR)
    const late = await call(kg.url, 'GET', '/api/v1/conversations', { token: old })
    t.equal(late.status, 401, 'the old key stops when the grace ends')
    t.equal(late.json.code, 'KEY_EXPIRED')
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: rolled.json.api_key })).status, 200)

    const now = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${rolled.json.id}/roll`, { token: rolled.json.api_key, body: { grace_period_seconds: 0 } })
    t.equal(now.status, 200)
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: rolled.json.api_key })).json.code, 'KEY_REVOKED', 'grace 0 revokes at once')
    const tooLong = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${now.json.id}/roll`, { token: now.json.api_key, body: { grace_period_seconds: 8 * 86_400 } })
    t.equal(tooLong.status, 422, 'more than 7 days of grace is refused')
    const gone = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${forever.id}/roll`, { token: now.json.api_key, body: {} })
    t.equal(gone.status, 404, 'a key that is no longer active cannot be rolled')
  })

  await t.test('last_used_at is written in batches, not per request', async (t) => {
    const relogged = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    const fresh = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: relogged, body: { name: 'usage' } })).json
    t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: fresh.api_key })).status, 200)
    const before = (await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: fresh.api_key })).json.find((k: { id: string }) => k.id === fresh.id)
    t.equal(before.last_used_at, null, 'not written on the request itself')
    await kg.close()
    const client = new pg.Client({ connectionString: kg.db.url, options: `-c search_path=${kg.db.schema}` })
    await client.connect()
    const { rows } = await client.query('SELECT last_used_at FROM api_keys WHERE id = $1', [fresh.id])
    await client.end()
    t.equal(rows[0].last_used_at?.getTime(), clock.now(), 'written on the next flush (here: shutdown), with the time of use')
  })
})
