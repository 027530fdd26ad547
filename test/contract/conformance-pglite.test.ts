import t from 'tap'
import { keygateOnPglite } from '../helpers/keygate.ts'
import { clientSession } from './session.ts'

t.test('a full client session conforms to the contract on the embedded database (registration on, no SMTP)', async (t) => {
  const kg = await keygateOnPglite({ KEYGATE_ALLOW_REGISTRATION: 'true' })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  await clientSession(t, kg.url, { registration: true })
})
