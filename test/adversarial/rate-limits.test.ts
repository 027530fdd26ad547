import t, { type Test } from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { BOOTSTRAP, call, keygateOnPglite } from '../helpers/keygate.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'
import { echoRouteFile, echoServer } from '../helpers/upstreams.ts'

// This file sends thousands of requests through gateways it starts: 25-45 s alone on two cores, up to two
// minutes while the suite's other files share them, so its own limit is longer than the suite's 120 s.
t.setTimeout(300_000)

/**
 * Attacks on the rate limits: spending a victim key's budget without holding the key, raising one's own limit
 * above the route's, and escaping a per-address budget with forged forwarding headers.
 */

const get = async (base: string, path: string, headers: Record<string, string> = {}) => (await probe(base, path, headers)).status

async function probe(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; code?: string }> {
  const res = await fetch(base + path, { headers })
  const text = await res.text()
  return { status: res.status, code: res.status === 200 ? undefined : (JSON.parse(text) as { code: string }).code }
}

async function setup(t: Test) {
  const echo = await echoServer()
  t.teardown(() => echo.close())
  const file = echoRouteFile(echo.origin, `
- { name: per-key, prefix: /key, upstream: echo, rate_limit: { limit: 5, window_seconds: 60 } }
- { name: per-user, prefix: /user, upstream: echo, rate_limit: { limit: 5, window_seconds: 60, per: user } }
- { name: public, prefix: /public, upstream: echo, auth: public, rate_limit: { limit: 5, window_seconds: 60 } }`)
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: file, KEYGATE_DEMOS: 'false', KEYGATE_MAX_KEYS_PER_USER: '10' })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const admin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token as string
  return { kg, admin }
}

t.test('unknown, malformed, revoked and forged credentials cannot spend a valid key\'s budget', async (t) => {
  const { kg, admin } = await setup(t)
  const victim = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: admin, body: { name: 'victim' } })).json as { id: string; api_key: string }
  const revoked = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: admin, body: { name: 'revoked' } })).json as { id: string; api_key: string }
  await call(kg.url, 'DELETE', `/api/v1/auth/api-keys/${revoked.id}`, { token: admin })
  const format = apiKeyFormat('sk_live_')
  const v = victim.api_key
  const attempts = [
    ...Array.from({ length: 40 }, () => format.generate().key), // well formed, valid checksum, no such key
    ...Array.from({ length: 20 }, (_, i) => v.slice(0, -1) + (v.at(-1) === String(i % 10) ? 'x' : String(i % 10))), // the victim's key, one character off
    ...Array.from({ length: 20 }, () => revoked.api_key),
    ...Array.from({ length: 20 }, () => `${v.slice(0, 12)}...${v.slice(-4)}`), // its display form (ASCII)
    ...Array.from({ length: 20 }, () => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged'),
  ]
  for (const path of ['/key/a', '/user/a']) {
    const refused = await Promise.all(attempts.map((c) => probe(kg.url, path, { authorization: `Bearer ${c}` })))
    t.notOk(refused.some((r) => r.status === 200), `${path}: no forged credential was admitted`)
    t.same([...new Set(refused.map((r) => r.code))].sort(), ['KEY_LOOKUPS_LIMITED', 'KEY_MALFORMED', 'KEY_REVOKED', 'KEY_UNKNOWN', 'TOKEN_INVALID'].filter((c) => refused.some((r) => r.code === c)), `${path}: each refused for its credential, never RATE_LIMITED`)
    t.notOk(refused.some((r) => r.code === 'RATE_LIMITED'))
    const statuses = []
    for (let i = 0; i < 6; i++) statuses.push(await get(kg.url, path, { authorization: `Bearer ${v}` }))
    t.same(statuses, [200, 200, 200, 200, 200, 429], `${path}: the victim still has its whole budget of 5`)
  }
  t.same(leakedSecrets(kg.logs, [v, revoked.api_key, ...attempts.filter((c) => c.startsWith('sk_live_') && !c.includes('.'))]), [], 'no key in any log line')
})

t.test('a key cannot raise its own limit above the route\'s, and its owner cannot loosen what was set', async (t) => {
  const { kg, admin } = await setup(t)
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: { username: 'mallory', password: 'mallory-password-1', email: 'mallory@example.com' } })).status, 201)
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: { username: 'mallory', password: 'mallory-password-1' } })).json.access_token as string

  const greedy = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'greedy', rate_limit: { limit: 1_000_000, window_seconds: 1 } } })).json as { id: string; api_key: string }
  const statuses = []
  for (let i = 0; i < 7; i++) statuses.push(await get(kg.url, '/key/a', { authorization: `Bearer ${greedy.api_key}` }))
  t.same(statuses, [200, 200, 200, 200, 200, 429, 429], 'a million a second of its own still gets the route\'s 5 a minute')

  const capped = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'capped', rate_limit: { limit: 2, window_seconds: 60 }, quota: { daily: 10 } } })).json as { id: string; api_key: string }
  const patch = (body: unknown, token = jwt) => call(kg.url, 'PATCH', `/api/v1/auth/api-keys/${capped.id}`, { token, body })
  for (const [body, what] of [
    [{ rate_limit: { limit: 3, window_seconds: 60 } }, 'a higher limit'],
    [{ rate_limit: { limit: 2, window_seconds: 30 } }, 'the same limit over a shorter window'],
    [{ rate_limit: { limit: 4, window_seconds: 120 } }, 'the same rate with a larger burst'],
    [{ rate_limit: null }, 'no limit'],
    [{ quota: { daily: 11 } }, 'a higher quota'],
    [{ quota: { monthly: 5 } }, 'a quota that drops the daily one'],
    [{ quota: null }, 'no quota'],
  ] as const) {
    const res = await patch(body)
    t.same([res.status, res.json.code], [403, 'NOT_SUPERUSER'], `the owner may not set ${what}`)
  }
  const rolled = await call(kg.url, 'POST', `/api/v1/auth/api-keys/${capped.id}/roll`, { token: jwt, body: { rate_limit: { limit: 100, window_seconds: 60 } } })
  t.same([rolled.status, rolled.json.code], [403, 'NOT_SUPERUSER'], 'nor through a roll')
  const listed = (await call(kg.url, 'GET', '/api/v1/auth/api-keys', { token: jwt })).json as Array<{ id: string; rate_limit: unknown; quota: unknown }>
  t.match(listed.find((k) => k.id === capped.id), { rate_limit: { limit: 2, window_seconds: 60 }, quota: { daily: 10 } }, 'nothing changed')

  const mine = (await call(kg.url, 'GET', '/api/v1/auth/me', { token: jwt })).json.id as string
  const bySuperuser = (body: unknown, token: string) => call(kg.url, 'PATCH', `/api/v1/auth/users/${mine}/api-keys/${capped.id}`, { token, body })
  t.same([(await bySuperuser({ rate_limit: null }, jwt)).status, (await bySuperuser({ rate_limit: null }, jwt)).json.code], [403, 'NOT_SUPERUSER'], 'the superuser endpoint is not the owner\'s way around')
  const raised = await bySuperuser({ rate_limit: { limit: 20, window_seconds: 60 } }, admin)
  t.same([raised.status, raised.json.rate_limit], [200, { limit: 20, window_seconds: 60 }], 'a superuser may raise it')
  t.equal((await patch({ rate_limit: { limit: 1, window_seconds: 60 }, quota: { daily: 5, monthly: 50 } })).status, 200, 'lowering is the owner\'s')
  t.equal((await patch({ rate_limit: { limit: 50, window_seconds: 60 } }, admin)).status, 404, 'another user\'s key is not reachable through the owner\'s endpoint')
  const refused = await get(kg.url, '/key/a', { authorization: `Bearer ${capped.api_key}` })
  const second = await get(kg.url, '/key/a', { authorization: `Bearer ${capped.api_key}` })
  t.same([refused, second], [200, 429], 'the lowered limit holds at once')
  t.same(leakedSecrets(kg.logs, [greedy.api_key, capped.api_key, jwt, admin, 'mallory-password-1']), [], 'no secret in any log line')
})

t.test('forged forwarding headers from an untrusted peer do not make new per-address budgets', async (t) => {
  const { kg } = await setup(t)
  const statuses = []
  for (let i = 0; i < 8; i++) statuses.push(await get(kg.url, '/public/a', { 'x-forwarded-for': `203.0.113.${i}`, 'x-real-ip': `198.51.100.${i}`, forwarded: `for=192.0.2.${i}` }))
  t.same(statuses, [200, 200, 200, 200, 200, 429, 429, 429])
})
