import pg from 'pg'
import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Credentials that multiply: a refresh token replayed within the retry window used to mint a new, independent
 * successor each time (one stolen token, many live families), and rolling the same key again and again during
 * its grace period piled up keys past KEYGATE_MAX_KEYS_PER_USER.
 */
t.test('credential families', async (t) => {
  const { kg } = await echoGateway(t, 'adv_families', { routes: '- { name: refresh, prefix: /api/v1/auth/refresh, methods: [POST], upstream: admin, auth: public }' })
  const db = new pg.Client({ connectionString: kg.db.url })
  await db.connect()
  t.teardown(() => db.end())
  const s = kg.db.schema

  await t.test('a refresh token replayed within the retry window keeps its family to one live token', async (t) => {
    const login = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json
    const r0: string = login.refresh_token
    const refresh = (token: string) => call(kg.url, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: token } })
    const live = async () => (await db.query(`SELECT count(*)::int AS n FROM ${s}.refresh_tokens t JOIN ${s}.sessions x ON x.id = t.session_id
      WHERE x.user_id = $1 AND x.id = (SELECT session_id FROM ${s}.refresh_tokens WHERE token_hash = encode(sha256($2::bytea), 'hex')) AND t.spent_at IS NULL`, [login.user.id, r0])).rows[0].n as number

    const first = await refresh(r0)
    t.equal(first.status, 200, `the first rotation: ${first.text}`)
    const retried = await Promise.all(Array.from({ length: 5 }, () => refresh(r0)))
    t.same(retried.map((r) => r.status), [200, 200, 200, 200, 200], 'retries within the window are answered')
    t.equal(await live(), 1, 'after 6 rotations of one token, its session holds one live refresh token')
    const successors = [first, ...retried].map((r) => r.json.refresh_token as string)
    const usable: string[] = []
    for (const token of successors) {
      const n = (await db.query(`SELECT count(*)::int AS n FROM ${s}.refresh_tokens WHERE token_hash = encode(sha256($1::bytea), 'hex') AND spent_at IS NULL`, [token])).rows[0].n
      if (n === 1) usable.push(token)
    }
    t.equal(usable.length, 1, 'exactly one of the six successors can still be spent')
    const next = await refresh(usable[0]!)
    t.equal(next.status, 200, 'the surviving successor rotates')
    const replay = await refresh(r0)
    t.same([replay.status, replay.json.code], [401, 'REFRESH_INVALID'], 'a replay of the first token once its successor was spent is reuse, even within the window')
    t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: next.json.access_token })).json.code, 'TOKEN_REVOKED', 'and it ends the whole session')
  })

  await t.test('rolling a key again and again during its grace period does not pass KEYGATE_MAX_KEYS_PER_USER', async (t) => {
    const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    const active = async () => (await db.query(`SELECT count(*)::int AS n FROM ${s}.api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`)).rows[0].n as number
    let key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'rolled' } })).json
    const roll = (id: string, grace: number) => call(kg.url, 'POST', `/api/v1/auth/api-keys/${id}/roll`, { token: jwt, body: { grace_period_seconds: grace } })
    const first = await roll(key.id, 3600)
    t.equal(first.status, 200, 'the first roll with a grace period is allowed (limit 1, the old key on its way out)')
    key = first.json
    let refused = 0
    for (let i = 0; i < 10; i++) {
      const again = await roll(key.id, 3600)
      if (again.status === 409 && again.json.code === 'KEY_LIMIT_REACHED') refused++
      else key = again.json
    }
    t.equal(refused, 10, 'ten more rolls with a grace period during the first one\'s: all 409 KEY_LIMIT_REACHED')
    t.equal(await active(), 2, 'active keys: the limit plus the one in its grace period')
    const noGrace = await roll(key.id, 0)
    t.equal(noGrace.status, 200, 'a roll without grace is always allowed: it adds no key')
    t.equal(await active(), 2)
  })
})
