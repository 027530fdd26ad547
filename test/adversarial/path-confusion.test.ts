import { createServer } from 'node:http'
import express from 'express'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { rawExchange, statusAndCode } from '../helpers/raw-http.ts'
import { close, listen, routeFile } from '../helpers/upstreams.ts'

/**
 * Path confusion between the gateway and the upstream: with a public route and a protected route under it on the
 * same upstream, no spelling of the request target may reach the upstream's protected handler without a
 * credential. Two real parsers sit behind the gateway: an Express 5 application (case-insensitive routing,
 * trailing slashes ignored) and a servlet-style parser (path parameters after `;` stripped from each segment,
 * then percent-decoding, empty segments collapsed, case-sensitive), as Tomcat and Jetty read a path.
 */

/** How a servlet container reads a request target: `;params` dropped per segment, then decoded and collapsed. */
function servletPath(target: string): string {
  const path = target.split('?')[0]!.replace(/;[^/]*/g, '')
  return decodeURIComponent(path).replace(/\/{2,}/g, '/')
}

// [target, what the table shows]. Every row is sent without a credential; none may be served as the secret.
const EXPRESS_ROWS: Array<[string, string]> = [
  ['/xpub/secret', 'control: the protected route'],
  ['/xpub/SECRET', 'upper case (Express routes case-insensitively)'],
  ['/xpub/Secret', 'title case'],
  ['/XPUB/secret', 'upper-case public prefix'],
  ['/Xpub/SeCrEt/x', 'mixed case, deeper'],
  ['/xpub/secret#x', 'a raw fragment'],
  ['/xpub/secret/#', 'a raw fragment after a slash'],
  ['/xpub/%73ecret', 'an encoded unreserved letter'],
  ['/xpub/%53ECRET', 'an encoded letter in another case'],
  ['/xpub/secre%74', 'an encoded last letter'],
  ['/xpub//secret', 'a doubled slash'],
  ['/xpub/secret/', 'a trailing slash'],
  ['/xpub/secret;x', 'path parameters'],
  ['/xpub;x/secret', 'path parameters on the public segment'],
  ['/xpub/secret?x=1', 'a query'],
  ['/xpub/./secret', 'a dot segment'],
  ['/xpub/x/../secret', 'a dot-dot segment'],
  ['/xpub/secret%2f', 'an encoded slash'],
  ['/xpub/secret%20', 'an encoded space'],
  ['/xpub/public', 'control: the public route'],
]
const SERVLET_ROWS: Array<[string, string]> = [
  ['/jpub/secret', 'control: the protected route'],
  ['/jpub/secret;x', 'path parameters (servlets drop them)'],
  ['/jpub/secret;jsessionid=ABC', 'a session id parameter'],
  ['/jpub;x/secret', 'parameters on the public segment'],
  ['/jpub/;x/secret', 'a segment of parameters only (an empty segment to the servlet)'],
  ['/jpub/secret;a;b/x', 'several parameters, deeper'],
  ['/jpub/%73ecret', 'an encoded unreserved letter (servlets decode it)'],
  ['/jpub/secre%74;x', 'encoded and with parameters'],
  ['/jpub/secret#x', 'a raw fragment'],
  ['/jpub/SECRET', 'upper case (the servlet is case-sensitive: not its secret)'],
  ['/jpub/secret%3bx', 'an encoded ; (a literal character to the servlet)'],
  ['/jpub/..;/jpub/secret', 'a dot segment with parameters'],
  ['/jpub/public', 'control: the public route'],
]

t.test('no request target reaches a protected upstream handler through a public route', async (t) => {
  const app = express()
  const served = (what: string) => (req: express.Request, res: express.Response) => { res.json({ served: what, url: req.originalUrl }) }
  app.get('/xpub/secret', served('secret'))
  app.get('/xpub/secret/*rest', served('secret'))
  app.use('/xpub', served('public'))
  app.use('/cs', served('public'))
  const expressServer = createServer(app)
  const servlet = createServer((req, res) => {
    let path: string
    try {
      path = servletPath(req.url ?? '/')
    } catch {
      res.writeHead(400).end()
      return
    }
    const what = path === '/jpub/secret' || path.startsWith('/jpub/secret/') ? 'secret' : 'public'
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: what, url: req.url }))
  })
  const [expressOrigin, servletOrigin] = await Promise.all([listen(expressServer), listen(servlet)])
  const config = routeFile(`
upstreams:
  admin: { url: "internal:admin" }
  express: { url: "${expressOrigin}" }
  servlet: { url: "${servletOrigin}" }
routes:
  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }
  - { name: auth, prefix: /api/v1/auth, upstream: admin }
  - { name: xpub, prefix: /xpub, upstream: express, auth: public }
  - { name: xpub-secret, prefix: /xpub/secret, upstream: express }
  - { name: jpub, prefix: /jpub, upstream: servlet, auth: public }
  - { name: jpub-secret, prefix: /jpub/secret, upstream: servlet }
  - { name: cs, prefix: /cs, upstream: express, auth: public }
  - { name: cs-secret, prefix: /cs/Secret, upstream: express, case_sensitive: true }
`)
  const kg = await keygateOnPostgres('adv_path_confusion', { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.close(); await kg.db.drop(); await Promise.all([close(expressServer), close(servlet)]) })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token

  const send = async (target: string, credential?: string) => {
    const lines = [`GET ${target} HTTP/1.1`, 'Host: test', ...(credential ? [`Authorization: Bearer ${credential}`] : []), 'Connection: close']
    const { response } = await rawExchange(kg.port, lines.join('\r\n') + '\r\n\r\n', 5000)
    // The upstreams answer {"served": "secret" | "public", …}; the gateway's refusals carry a code instead.
    const servedAs = /"served":"(\w+)"/.exec(response)?.[1]
    return { ...statusAndCode(response), servedAs }
  }

  for (const [label, rows] of [['Express 5', EXPRESS_ROWS], ['servlet-style parser', SERVLET_ROWS]] as const) {
    await t.test(`${label}: without a credential, nothing is served as the protected route`, async (t) => {
      const table: string[] = []
      for (const [target, what] of rows) {
        const res = await send(target)
        table.push(`${target.padEnd(30)} ${String(res.status)} ${res.code ?? res.servedAs ?? ''}`)
        t.not(res.servedAs, 'secret', `${target} (${what}): ${res.status} ${res.code ?? res.servedAs}`)
        if (res.servedAs === undefined) t.ok([400, 401, 404].includes(res.status) && res.code, `${target}: refused by the gateway with a code`)
      }
      t.comment(`${label}\n${table.join('\n')}`)
    })
  }

  await t.test('with a credential, the protected handlers answer, path parameters included', async (t) => {
    for (const target of ['/xpub/secret', '/xpub/SECRET', '/jpub/secret', '/jpub/secret;jsessionid=ABC', '/jpub/%73ecret']) {
      t.equal((await send(target, jwt)).servedAs, 'secret', `${target}: the protected handler`)
    }
  })

  await t.test('case_sensitive: true matches the prefix in exact case only', async (t) => {
    t.same(await send('/cs/Secret'), { status: 401, code: 'AUTH_REQUIRED', servedAs: undefined }, 'the exact case is the protected route')
    t.equal((await send('/cs/secret')).servedAs, 'public', 'another case is not that route')
  })
})
