import t from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'

t.test('with the database unreachable, cached keys keep working and unknown ones get 503, never 401', async (t) => {
  const schema = await testSchema('dbdown')
  const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(schema.url).port || 5432) })
  const url = new URL(schema.url)
  url.port = String(proxy.port)
  const kg = await keygateOnPostgres('dbdown', {}, { ...schema, url: url.toString() })
  t.teardown(async () => { await kg.close(); await proxy.close(); await schema.drop() })

  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: login.json.access_token, body: { name: 'cached' } })).json.api_key
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200, 'the key is used once, so it is cached')

  proxy.cut()
  t.equal((await call(kg.url, 'GET', '/api/v1/conversations', { token: key })).status, 200, 'the cached key still works')
  const unknown = await call(kg.url, 'GET', '/api/v1/conversations', { token: apiKeyFormat().generate().key })
  t.equal(unknown.status, 503, 'an unknown key cannot be checked: 503')
  t.equal(unknown.json.code, 'DATABASE_UNAVAILABLE')
  const ready = await call(kg.url, 'GET', '/readyz')
  t.equal(ready.status, 503, 'the instance reports itself not ready')

  proxy.restore()
  const back = await call(kg.url, 'GET', '/api/v1/conversations', { token: apiKeyFormat().generate().key })
  t.equal(back.status, 401, 'when the database returns, an unknown key is a plain 401 again')
  t.equal(back.json.code, 'KEY_UNKNOWN')
  t.equal((await call(kg.url, 'GET', '/readyz')).status, 200)
})
