import t from 'tap'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * Headers that upstream frameworks and authenticating proxies commonly believe (a rewritten URL that IIS and
 * Symfony route by, the client address that CDNs state, the user an oauth2-proxy in front asserted) never reach
 * an upstream with the client's value, in any spelling; `KEYGATE_STRIP_HEADERS` replaces the list.
 */
const BELIEVED = [
  'X-Original-URL', 'X-Rewrite-URL', 'True-Client-IP', 'X-Client-IP', 'CF-Connecting-IP', 'X-Real-IP',
  'Remote-User', 'X-Remote-User', 'X-Forwarded-User', 'X-Forwarded-Email', 'X-Forwarded-Groups',
  'X-Auth-Request-User', 'X-Auth-Request-Email', 'X-Auth-Request-Groups', 'X-Auth-Request-Access-Token',
]
const SPELLINGS = [(n: string) => n, (n: string) => n.toLowerCase(), (n: string) => n.toUpperCase().replaceAll('-', '_')]

t.test('headers that upstreams believe are dropped in every spelling, on public and protected routes', async (t) => {
  const { echo, kg } = await echoGateway(t, 'adv_believed', { routes: `
    - { name: open, prefix: /open, upstream: echo, auth: public }
    - { name: echo, prefix: /echo, upstream: echo }
  ` })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  let n = 0
  for (const [path, credential] of [['/open/x', null], ['/echo/x', jwt]] as const) {
    for (const name of BELIEVED) {
      for (const spell of SPELLINGS) {
        const marker = `forged${n++}`
        echo.seen.length = 0
        const head = [`GET ${path} HTTP/1.1`, 'Host: test', ...(credential ? [`Authorization: Bearer ${credential}`] : []), `${spell(name)}: ${marker}`, 'Connection: close']
        const { response } = await rawExchange(kg.port, head.join('\r\n') + '\r\n\r\n')
        t.equal(statusAndCode(response).status, 200, `${path} ${spell(name)}: forwarded`)
        t.equal(echo.seen.length, 1)
        t.notOk(echo.seen[0]!.rawHeaders.some((v) => v.includes(marker)), `${path} ${spell(name)}: the client's value did not reach the upstream`)
      }
    }
  }
  echo.seen.length = 0
  await rawExchange(kg.port, 'GET /open/x HTTP/1.1\r\nHost: test\r\nX-Original-URLs: kept\r\nX-Client-IPv6: kept\r\nConnection: close\r\n\r\n')
  t.equal(echo.seen[0]!.headers['x-original-urls'], 'kept', 'a header that only starts like an exact entry is forwarded')
  t.equal(echo.seen[0]!.headers['x-client-ipv6'], 'kept')
})

t.test('KEYGATE_STRIP_HEADERS replaces the list, prefixes with *', async (t) => {
  const { echo, kg } = await echoGateway(t, 'adv_believed_cfg', { routes: '- { name: open, prefix: /open, upstream: echo, auth: public }', env: { KEYGATE_STRIP_HEADERS: 'x-tenant,x-internal-*' } })
  echo.seen.length = 0
  const head = ['GET /open/x HTTP/1.1', 'Host: test', 'X-Tenant: forged', 'X_Internal_Role: forged', 'X-Original-URL: /kept', 'Connection: close']
  t.equal(statusAndCode((await rawExchange(kg.port, head.join('\r\n') + '\r\n\r\n')).response).status, 200)
  const h = echo.seen[0]!.headers
  t.equal(h['x-tenant'], undefined, 'a configured name is dropped')
  t.notOk(echo.seen[0]!.rawHeaders.some((v) => v === 'forged'), 'a configured prefix is dropped, with _ read as -')
  t.equal(h['x-original-url'], '/kept', 'the default list is replaced, not extended')
})
