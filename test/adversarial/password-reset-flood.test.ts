import t from 'tap'
import { BOOTSTRAP, call, keygateOnPglite } from '../helpers/keygate.ts'

/**
 * Password reset sends mail and takes tokens: an attacker flooding someone's inbox, or guessing tokens, from one
 * address meets the shipped route file's limit (10 an hour per client address, both steps together).
 */
const API = '/api/v1/auth'

t.test('the shipped route file limits password reset to 10 requests an hour from one address: the 11th is 429 RATE_LIMITED, other routes unaffected', async (t) => {
  const kg = await keygateOnPglite()
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await call(kg.url, 'POST', `${API}/password-reset/request?email=nobody%40example.com`)).status)
  t.same(statuses, Array(10).fill(501), 'ten requests reach the admin API (no mail server here: 501)')
  const eleventh = await call(kg.url, 'POST', `${API}/password-reset/request?email=nobody%40example.com`)
  t.equal(eleventh.status, 429)
  t.equal(eleventh.json.code, 'RATE_LIMITED')
  t.ok(Number(eleventh.headers.get('retry-after')) > 0, 'with Retry-After')
  const confirm = await call(kg.url, 'POST', `${API}/password-reset/confirm?token=x&new_password=whatever123`)
  t.equal(confirm.json.code, 'RATE_LIMITED', 'confirming shares the budget')
  t.equal((await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).status, 200, 'login is another route with its own limits')
})
