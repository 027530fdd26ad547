import t from 'tap'
import { keygateOnPostgres } from '../helpers/keygate.ts'
import { clientSession } from './session.ts'

t.test('a full client session conforms to the contract on the PostgreSQL server (registration off, no SMTP)', async (t) => {
  const kg = await keygateOnPostgres('conformance')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  await clientSession(t, kg.url, { registration: false })
})
