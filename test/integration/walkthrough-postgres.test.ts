import t from 'tap'
import { keygateOnPostgres } from '../helpers/keygate.ts'
import { assertNoSecretLogged, walkthrough } from '../helpers/walkthrough.ts'

t.test('the walkthrough works on the PostgreSQL server', async (t) => {
  const kg = await keygateOnPostgres('walkthrough')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const secrets = await walkthrough(t, kg.url)
  assertNoSecretLogged(t, kg.logs, secrets)
})
