import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

/**
 * CSRF on the refresh cookie's calls. The cookie is SameSite=Strict, which stops other sites but not other
 * origins of the same site (a sibling subdomain, another port of the host): a page there could otherwise make
 * the browser refresh (or log in over, or log out) the user's console session. Browsers say where a call comes
 * from (`Sec-Fetch-Site`, `Origin`); a page of another origin that KEYGATE_CORS_ORIGINS does not list gets 403
 * CROSS_SITE_REFUSED and changes nothing. Clients that are not browsers send neither header and are unaffected.
 */
const cookieOf = (res: { headers: Headers }) => res.headers.getSetCookie().find((c) => c.startsWith('refresh_token='))!.split(';')[0]!

t.test('a page of another origin cannot use the refresh cookie; the console and non-browser clients can', async (t) => {
  const trusted = 'https://app.example.com'
  const kg = await keygateOnPostgres('adv_cross_site', { KEYGATE_CORS_ORIGINS: trusted })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const own = new URL(kg.url).origin
  const login = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
  let cookie = cookieOf(login)
  const refresh = (headers: Record<string, string>) => call(kg.url, 'POST', '/api/v1/auth/refresh', { headers: { cookie, ...headers } })

  const attacks: Array<[string, Record<string, string>]> = [
    ['a sibling origin of the same site', { origin: 'https://evil.example.com', 'sec-fetch-site': 'same-site' }],
    ['another port of the same host', { origin: own.replace(/:\d+$/, ':1'), 'sec-fetch-site': 'same-site' }],
    ['another site (were SameSite ignored)', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
    ['an opaque origin (sandboxed frame, data: URL)', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
    ['an older browser: a foreign Origin and no Sec-Fetch-Site', { origin: 'https://evil.example.com' }],
    ['an older browser: Origin null', { origin: 'null' }],
    ['a cross-site navigation without Origin', { 'sec-fetch-site': 'cross-site' }],
    ['a trusted-looking Origin with different case', { origin: 'https://APP.example.com', 'sec-fetch-site': 'same-site' }],
  ]
  for (const [what, headers] of attacks) {
    const res = await refresh(headers)
    t.same([res.status, res.json.code, res.headers.getSetCookie().length], [403, 'CROSS_SITE_REFUSED', 0], `refresh from ${what}: refused, no cookie set`)
  }
  // Nothing changed: the refresh token those calls carried is still the live one.
  const ok = await refresh({})
  t.equal(ok.status, 200, 'the cookie still works: no refused call spent it')
  cookie = cookieOf(ok)

  const allowed: Array<[string, Record<string, string>]> = [
    ['the console (same origin)', { origin: own, 'sec-fetch-site': 'same-origin' }],
    ['a typed or bookmarked request', { 'sec-fetch-site': 'none' }],
    ['an origin KEYGATE_CORS_ORIGINS lists', { origin: trusted, 'sec-fetch-site': 'cross-site' }],
    ['an older browser on the same origin', { origin: own }],
    ['a client that is not a browser', {}],
  ]
  for (const [what, headers] of allowed) {
    const res = await refresh(headers)
    t.equal(res.status, 200, `refresh from ${what}: allowed`)
    cookie = cookieOf(res)
  }

  // Login and logout set and clear the cookie: the same decision.
  const crossLogin = await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP, headers: { origin: 'https://evil.example.com', 'sec-fetch-site': 'same-site' } })
  t.same([crossLogin.status, crossLogin.json.code, crossLogin.headers.getSetCookie().length], [403, 'CROSS_SITE_REFUSED', 0], 'a login from another origin (login CSRF) is refused')
  const jwt = login.json.access_token
  const crossLogout = await call(kg.url, 'POST', '/api/v1/auth/logout', { token: jwt, headers: { origin: 'https://evil.example.com', 'sec-fetch-site': 'same-site' } })
  t.same([crossLogout.status, crossLogout.json.code], [403, 'CROSS_SITE_REFUSED'], 'a logout from another origin is refused')
  t.equal((await call(kg.url, 'GET', '/api/v1/auth/me', { token: jwt })).status, 200, 'and the session lives on')
  const crossRegister = await call(kg.url, 'POST', '/api/v1/auth/register', { body: { username: 'mallory', email: 'm@example.com', password: 'mallory password' }, headers: { 'sec-fetch-site': 'cross-site' } })
  t.same([crossRegister.status, crossRegister.json.code], [403, 'CROSS_SITE_REFUSED'], 'registration too')
})

t.test('the console page cannot be framed and runs no inline script', async (t) => {
  const kg = await keygateOnPostgres('adv_console_headers')
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  for (const path of ['/console/', '/console/console.js', '/console/console.css', '/console']) {
    const res = await fetch(kg.url + path, { redirect: 'manual' })
    const csp = res.headers.get('content-security-policy') ?? ''
    t.match(csp, /frame-ancestors 'none'/, `${path}: frame-ancestors 'none'`)
    t.match(csp, /script-src 'self'(;|$)/, `${path}: scripts from this origin only`)
    t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, `${path}: no inline script, no eval, no wildcard`)
    t.equal(res.headers.get('x-frame-options'), 'DENY')
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    await res.arrayBuffer()
  }
  const pageRes = await fetch(kg.url + '/console/')
  t.equal(pageRes.headers.get('cache-control'), 'no-store', 'the page is never stored (no back/forward cache of a shown secret)')
  const page = await pageRes.text()
  t.notMatch(page, /<script(?![^>]*\bsrc=)[^>]*>/i, 'the page has no inline script element')
  t.notMatch(page, /\son[a-z]+=/i, 'and no inline event handler')
  t.notMatch(page, /<style/i, 'and no inline style sheet')
  const traversal = await fetch(kg.url + '/console/..%2f..%2fpackage.json')
  t.not(traversal.status, 200, 'no file outside the three is served')
  await traversal.arrayBuffer()
})
