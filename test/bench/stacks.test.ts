import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startChildProxy } from '../../bench/child-proxy.ts'
import { stackEnv } from '../../bench/stack-settings.ts'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { systemClock } from '../../core/clock.ts'
import { openPgDb } from '../../core/db-pg.ts'
import { keyStore } from '../../core/key-store.ts'
import { migrate } from '../../core/migrate.ts'
import { tokenService } from '../../core/tokens.ts'
import { userStore } from '../../core/user-store.ts'
import { testSchema } from '../helpers/postgres.ts'
import { echoServer } from '../helpers/upstreams.ts'

// The stack rows of `npm run bench` must do the job of Keygate's bench path, or the comparison says nothing:
// authenticate the credential Keygate issued, forward with the user's id, refuse the rest.
for (const stack of ['express', 'fastify'] as const) {
  t.test(`the ${stack} stack forwards a valid key or token with x-user-id, refuses the rest with 401, and logs one line per request`, async (t) => {
    const schema = await testSchema(`stack_${stack}`)
    const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
    const upstream = await echoServer()
    const dir = mkdtempSync(join(tmpdir(), 'keygate-stack-'))
    t.teardown(async () => { await upstream.close(); await db.close(); await schema.drop(); rmSync(dir, { recursive: true, force: true }) })
    await migrate(db)
    const now = new Date()
    const user = await userStore.create(db, { username: 'stan', email: 'stan@example.com', passwordHash: 'x' }, now)
    const format = apiKeyFormat()
    const key = format.generate()
    await keyStore.create(db, { userId: user.id, name: 'live', hash: key.hash, display: key.display, scopes: [], expiresAt: null, maxActive: 10 }, now)
    const revoked = format.generate()
    const row = await keyStore.create(db, { userId: user.id, name: 'gone', hash: revoked.hash, display: revoked.display, scopes: [], expiresAt: null, maxActive: 10 }, now)
    await keyStore.revoke(db, user.id, row.id, now)
    const secret = 'a'.repeat(48)
    const tokens = (issuer: string, s = secret) => tokenService({ secret: s, issuer, audience: `${issuer}:access`, accessTtlSec: 600, refreshTtlSec: 600, clock: systemClock })
    const jwt = tokens('keygate').issueAccess(user.id, '00000000-0000-4000-8000-000000000000').token
    const log = join(dir, 'access.log')
    const proxy = await startChildProxy(`bench/stack-${stack}.ts`, { env: stackEnv({ upstream: upstream.origin, databaseUrl: schema.url, schema: schema.schema, jwtSecret: secret, issuer: 'keygate', log }) })
    t.teardown(proxy.stop)

    const get = (authorization?: string) => fetch(`${proxy.url}/bench/x?y=1`, { headers: { ...(authorization ? { authorization } : {}), 'x-user-id': 'forged' } })
    for (const [what, credential] of [['API key', key.key], ['API key again (from the LRU)', key.key], ['access token', jwt]] as const) {
      const res = await get(`Bearer ${credential}`)
      t.equal(res.status, 200, `${what}: forwarded`)
      await res.arrayBuffer()
      const seen = upstream.seen.at(-1)!
      t.equal(seen.url, '/bench/x?y=1', `${what}: path and query as sent`)
      t.equal(seen.headers['x-user-id'], user.id, `${what}: the user's id, not the client's`)
    }
    const refused: Array<[string, string | undefined]> = [
      ['no credential', undefined],
      ['a revoked key', `Bearer ${revoked.key}`],
      ['an unknown key', `Bearer ${format.generate().key}`],
      ['a token of another issuer', `Bearer ${tokens('other').issueAccess(user.id, 's').token}`],
      ['a token signed with another secret', `Bearer ${tokens('keygate', 'b'.repeat(48)).issueAccess(user.id, 's').token}`],
      ['not a bearer credential', `Basic ${Buffer.from('stan:x').toString('base64')}`],
    ]
    const forwarded = upstream.seen.length
    for (const [what, authorization] of refused) {
      const res = await get(authorization)
      await res.arrayBuffer()
      t.equal(res.status, 401, `${what}: 401`)
    }
    t.equal(upstream.seen.length, forwarded, 'nothing refused reached the upstream')
    const requests = 3 + refused.length
    // Fastify's logger also writes that it listens: the request lines are those naming the path.
    const accessLines = () => readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('/bench/x')).length
    const deadline = Date.now() + 5000
    let lines = 0
    while (Date.now() < deadline && (lines = accessLines()) < requests) await new Promise((r) => setTimeout(r, 50))
    t.equal(lines, requests, 'one access line per request')
    t.notMatch(readFileSync(log, 'utf8'), key.key, 'the key is not in the log')
  })
}
