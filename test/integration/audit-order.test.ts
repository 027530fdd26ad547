import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

t.test('the audit trail is newest first past ten events, and pages with before', async (t) => {
  const kg = await keygateOnPostgres('audit_order')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  let jwt = ''
  for (let i = 0; i < 12; i++) jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const all = (await call(kg.url, 'GET', '/api/v1/auth/audit?limit=500', { token: jwt })).json as Array<{ id: string }>
  const ids = all.map((e) => Number(e.id))
  t.ok(ids.length > 10, `${ids.length} events`)
  t.same(ids, [...ids].sort((a, b) => b - a), 'ids strictly newest first, as numbers')
  const page = (await call(kg.url, 'GET', `/api/v1/auth/audit?limit=3&before=${ids[2]}`, { token: jwt })).json as Array<{ id: string }>
  t.same(page.map((e) => Number(e.id)), ids.slice(3, 6), 'before pages on from there')
})
