import pg from 'pg'
import t, { type Test } from 'tap'
import { openPgDb } from '../../../core/db-pg.ts'
import type { Invalidation, InvalidationBus } from '../../../core/invalidation.ts'
import { invalidationPublisher } from '../../../core/invalidation-publisher.ts'
import { migrate } from '../../../core/migrate.ts'
import { BOOTSTRAP, call, keygateOnPostgres, refusedWithin } from '../../helpers/keygate.ts'
import { testSchema, type TestSchema } from '../../helpers/postgres.ts'
import { spawnKeygate } from '../../helpers/process.ts'
import { testRedisPrefix } from '../../helpers/redis.ts'

/** A client on the test's schema, for looking at what was committed. */
async function inspect(t: Test, schema: TestSchema) {
  const client = new pg.Client({ connectionString: schema.url, options: `-c search_path=${schema.schema}` })
  await client.connect()
  t.teardown(() => client.end())
  const count = async (sql: string, params: unknown[] = []) => (await client.query<{ n: number }>(sql, params)).rows[0]!.n
  return { client, count }
}

t.test('a revocation whose audit row cannot be written is not committed, and the retry revokes and announces it', async (t) => {
  const schema = await testSchema('audit_refused')
  // A cache lifetime far longer than the test: only an announced revocation can make B refuse the key.
  const extra = { KEYGATE_CACHE_TTL_MS: '600000' }
  const a = await keygateOnPostgres('audit_refused', extra, schema)
  const b = await keygateOnPostgres('audit_refused', extra, schema)
  t.teardown(async () => { await a.close(); await b.close(); await schema.drop() })
  const { client, count } = await inspect(t, schema)

  const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json as { id: string; api_key: string }
  t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'B has the key cached')

  await client.query(`CREATE FUNCTION refuse_revoked_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.event = 'key.revoked' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$`)
  await client.query('CREATE TRIGGER refuse_revoked_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_revoked_audit()')
  // Not through call(): an internal failure is not one of the operation's documented answers.
  const failed = await fetch(`${a.url}/api/v1/auth/api-keys/${key.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${jwt}` } })
  t.equal(failed.status, 500)
  t.equal(((await failed.json()) as { code: string }).code, 'INTERNAL')
  t.equal(await count('SELECT count(*)::int AS n FROM api_keys WHERE id = $1 AND revoked_at IS NOT NULL', [key.id]), 0, 'the key is not revoked')
  t.equal(await count("SELECT count(*)::int AS n FROM audit_events WHERE event = 'key.revoked'"), 0, 'no audit row')
  t.equal(await count('SELECT count(*)::int AS n FROM invalidation_outbox'), 0, 'nothing owed')
  for (const kg of [a, b]) t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'the key still works everywhere: nothing changed')

  await client.query('DROP TRIGGER refuse_revoked_audit ON audit_events')
  t.equal((await call(a.url, 'DELETE', `/api/v1/auth/api-keys/${key.id}`, { token: jwt })).status, 200, 'the retry revokes it')
  const seen = await refusedWithin(b.url, key.api_key, 1000)
  t.equal(seen.code, 'KEY_REVOKED', `and B refuses it ${seen.afterMs.toFixed(1)} ms later`)
  t.equal(await count("SELECT count(*)::int AS n FROM audit_events WHERE event = 'key.revoked' AND key_id = $1", [key.id]), 1, 'with its audit row')
  t.equal(await count('SELECT count(*)::int AS n FROM invalidation_outbox'), 0, 'and nothing owed')
})

for (const transport of ['redis', 'postgres'] as const) {
  t.test(`a revocation committed by an instance killed before it publishes is announced by another instance (${transport})`, async (t) => {
    const schema = await testSchema(`killed_${transport}`)
    const redis = transport === 'redis' ? await testRedisPrefix('killed') : undefined
    const env: Record<string, string> = {
      DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, KEYGATE_CACHE_TTL_MS: '600000',
      ...(redis ? { REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix } : {}),
    }
    // A dies between the commit of its first announcing write and the publish (the test hook).
    const a = await spawnKeygate({ ...env, KEYGATE_TEST_CRASH_BEFORE_PUBLISH: '1' })
    const b = await spawnKeygate(env)
    t.teardown(async () => { await Promise.all([a.stop('SIGKILL'), b.stop()]); await redis?.drop(); await schema.drop() })
    const { count } = await inspect(t, schema)

    const jwt = (await call(a.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
    const key = (await call(a.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'k' } })).json as { id: string; api_key: string }
    t.equal((await call(b.url, 'GET', '/api/v1/conversations', { token: key.api_key })).status, 200, 'B has the key cached')

    await t.rejects(fetch(`${a.url}/api/v1/auth/api-keys/${key.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${jwt}` } }), 'A dies before it answers')
    t.equal(await a.stop('SIGKILL'), null, 'killed by a signal')
    t.equal(await count('SELECT count(*)::int AS n FROM api_keys WHERE id = $1 AND revoked_at IS NOT NULL', [key.id]), 1, 'the revocation was committed')
    const seen = await refusedWithin(b.url, key.api_key, 10_000)
    t.equal(seen.code, 'KEY_REVOKED', `B refuses it ${seen.afterMs.toFixed(0)} ms later (cache lifetime 600 s)`)
    t.equal(await count("SELECT count(*)::int AS n FROM audit_events WHERE event = 'key.revoked' AND key_id = $1", [key.id]), 1, 'with its audit row')
    const deadline = Date.now() + 5000
    while ((await count('SELECT count(*)::int AS n FROM invalidation_outbox')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    t.equal(await count('SELECT count(*)::int AS n FROM invalidation_outbox'), 0, 'and nothing is owed any more')
  })
}

t.test('a publish that fails after the commit answers INVALIDATION_FAILED, applies the change here, and leaves it owed to the drain', async (t) => {
  const schema = await testSchema('publisher')
  const db = await openPgDb({ connectionString: schema.url, schema: schema.schema })
  t.teardown(async () => { await db.close(); await schema.drop() })
  await migrate(db)
  let down = true
  const sent: Invalidation[] = []
  const here: Invalidation[] = []
  const bus: InvalidationBus = {
    kind: 'redis',
    async publish(m) {
      if (down) throw new Error('transport down')
      sent.push(m)
    },
    subscribe: () => () => {},
    applyHere: (m) => { here.push(m) },
  }
  const publisher = invalidationPublisher({ db, bus, drainMs: 1000, settleMs: 0 })
  const owed = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM invalidation_outbox')).rows[0]!.n

  await t.rejects(publisher.commit(async (tx, announce) => {
    await tx.query("INSERT INTO keygate_secrets (name, value) VALUES ('marker', 'x')")
    announce({ kind: 'key', keyHash: 'h1' })
    announce({ kind: 'user', userId: 'u1' })
  }), { code: 'INVALIDATION_FAILED' })
  t.equal((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM keygate_secrets WHERE name = 'marker'")).rows[0]!.n, 1, 'the change is committed')
  t.same(here, [{ kind: 'key', keyHash: 'h1' }, { kind: 'user', userId: 'u1' }], 'and applied on this instance')
  t.equal(await owed(), 2, 'both messages are owed')

  await t.rejects(publisher.commit(async (tx, announce) => {
    announce({ kind: 'key', keyHash: 'h2' })
    await tx.query('SELECT 1/0')
  }))
  t.equal(await owed(), 2, 'a write that fails leaves nothing owed')

  down = false
  t.equal(await publisher.drain(), 2, 'the drain publishes what is owed once the transport answers')
  t.same(sent, [{ kind: 'key', keyHash: 'h1' }, { kind: 'user', userId: 'u1' }])
  t.equal(await owed(), 0)
  await publisher.commit(async (_tx, announce) => { announce({ kind: 'session', sessionId: 's1' }) })
  t.same(sent.at(-1), { kind: 'session', sessionId: 's1' }, 'a healthy publish goes out after the commit')
  t.equal(await owed(), 0, 'and its row is deleted')
})
