import t from 'tap'
import { keygateOnPostgres } from '../helpers/keygate.ts'
import { mailbox, resetTokenIn } from '../helpers/smtp-server.ts'
import { clientSession } from './session.ts'

t.test('a full client session conforms to the contract on the PostgreSQL server (registration off, password reset by SMTP)', async (t) => {
  const mail = await mailbox()
  const kg = await keygateOnPostgres('conformance', { KEYGATE_SMTP_URL: mail.url, KEYGATE_MAIL_FROM: 'keygate@example.com' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await mail.close() })
  await clientSession(t, kg.url, { registration: false, resetToken: async (email) => resetTokenIn(await mail.nextTo(email)) })
})
