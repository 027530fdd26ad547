import pg from 'pg'
import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * The in-process admin API listens on a loopback port any local process can reach. It used to believe
 * `x-keygate-client-address` from any caller, so a local process could choose the address its login attempts
 * were counted under (slipping past the per-address limit, or locking out someone else's address) and the
 * address the audit trail records. It now believes the header only with the gateway's per-process proof, which
 * only the in-process services get (an upstream that saw one could replay it while it is fresh).
 */
t.test('the loopback admin port believes a client address only with the gateway\'s proof', async (t) => {
  const { kg, echo } = await echoGateway(t, 'adv_loopback', { routes: '- { name: open, prefix: /open, upstream: echo, auth: public }', env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8', KEYGATE_LOGIN_MAX_ATTEMPTS: '3' } })
  const adminUrl: string = kg.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'keygate listening').admin_api
  t.match(adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the admin API listens on loopback')
  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const audited = async () => (await db.query(`SELECT client_address FROM ${kg.db.schema}.audit_events WHERE event = 'login.failed' ORDER BY id DESC LIMIT 1`)).rows[0]?.client_address as string | undefined
  const wrong = { username: BOOTSTRAP.username, password: 'a wrong password' }

  // An upstream gets the client address, never its proof: with one, it could log in at the loopback port as that
  // client (its attempts counted against the client's address, audited under it) for as long as the proof is fresh.
  await fetch(`${kg.url}/open/x`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
  const seen = echo.seen.at(-1)!.headers
  t.equal(seen['x-keygate-client-address'], '203.0.113.9', 'upstreams get the client address')
  t.notOk('x-keygate-client-address-proof' in seen, 'upstreams get no proof of it to replay')

  const now = Math.floor(Date.now() / 1000)
  const forgeries: Array<[string, Record<string, string>]> = [
    ['no proof', { 'x-keygate-client-address': '198.51.100.7' }],
    ['a made-up proof', { 'x-keygate-client-address': '198.51.100.7', 'x-keygate-client-address-proof': `${now}.${'A'.repeat(43)}` }],
    ['a proof of the right shape for another second', { 'x-keygate-client-address': '203.0.113.9', 'x-keygate-client-address-proof': `${now - 120}.${'B'.repeat(43)}` }],
  ]
  for (const [what, headers] of forgeries) {
    const res = await fetch(`${adminUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(wrong) })
    t.equal(res.status, 401, `${what}: a failed login`)
    t.equal(await audited(), '127.0.0.1', `${what}: counted and audited under the caller's real address, not the stated one`)
  }
  const locked = await fetch(`${adminUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-keygate-client-address': '198.51.100.8' }, body: JSON.stringify({ username: 'someone-else', password: 'x' }) })
  t.equal(locked.status, 429, 'stating a fresh address does not escape the per-address limit of the real one')

  const via = await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'nobody', password: 'x' }, headers: { 'x-forwarded-for': '203.0.113.10' } })
  t.equal(via.status, 401, 'through the gateway')
  t.equal(await audited(), '203.0.113.10', 'the address the gateway states, with its proof, is believed')
})
