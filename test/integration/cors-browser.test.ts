import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import t from 'tap'
import { BOOTSTRAP, keygateOnPostgres } from '../helpers/keygate.ts'

/**
 * CORS in a real browser (Debian's Chromium through playwright-core): a page served from an allowed origin logs
 * in on the gateway's origin with `credentials: 'include'`, calls `/me` and refreshes with the cookie; the same
 * page from another origin is stopped by the browser.
 */
const CHROMIUM = '/usr/bin/chromium'

/** Chromium with a fresh profile (its --user-data-dir), headless. */
async function launch(): Promise<{ browser: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'keygate-chromium-'))
  try {
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    return { browser, profile }
  } catch (err) {
    rmSync(profile, { recursive: true, force: true })
    throw new Error(`Chromium could not start from ${CHROMIUM} (${(err as Error).message.split('\n')[0]}); install it with: apt-get install -y chromium`)
  }
}

/** Serves one empty page: the test's scripts run in it, from this server's origin. */
async function pageServer(): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return server
}

/** What the page's script saw: each step's status and what it could read, or the browser's error. */
interface Seen { login?: number; user?: string; requestId?: string | null; me?: number; meUser?: string; refresh?: number; error?: string }

t.test('a browser app on an allowed origin logs in and calls /me with credentials; another origin cannot', async (t) => {
  const pages = await pageServer()
  const port = (pages.address() as AddressInfo).port
  const allowed = `http://127.0.0.1:${port}`
  t.teardown(() => pages.close())
  const kg = await keygateOnPostgres('cors_browser', { KEYGATE_CORS_ORIGINS: allowed })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const { browser, profile } = await launch()
  t.teardown(async () => { await browser.close(); rmSync(profile, { recursive: true, force: true }) })

  const run = async (pageOrigin: string): Promise<Seen> => {
    const page = await browser.newPage()
    await page.goto(pageOrigin + '/')
    const seen = await page.evaluate(async ({ api, body }) => {
      const seen: Seen = {}
      try {
        const login = await fetch(api + '/api/v1/auth/login', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        seen.login = login.status
        seen.requestId = login.headers.get('x-request-id')
        const tokens = await login.json()
        seen.user = tokens.user.username
        const me = await fetch(api + '/api/v1/auth/me', { credentials: 'include', headers: { authorization: `Bearer ${tokens.access_token}` } })
        seen.me = me.status
        seen.meUser = (await me.json()).username
        const refresh = await fetch(api + '/api/v1/auth/refresh', { method: 'POST', credentials: 'include' })
        seen.refresh = refresh.status
      } catch (err) {
        seen.error = String(err)
      }
      return seen
    }, { api: kg.url.replace('localhost', '127.0.0.1'), body: BOOTSTRAP })
    await page.close()
    return seen as Seen
  }

  // Through the whole pipeline first: preflights before authentication, errors marked too.
  const preflight = await fetch(kg.url + '/api/v1/auth/me', { method: 'OPTIONS', headers: { origin: allowed, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
  t.equal(preflight.status, 204, 'a preflight to a route that needs a credential is answered before authentication')
  t.equal(preflight.headers.get('access-control-allow-origin'), allowed)
  const evil = await fetch(kg.url + '/api/v1/auth/me', { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } })
  t.same([evil.status, (await evil.json()).code, evil.headers.get('access-control-allow-origin')], [403, 'CORS_ORIGIN_FORBIDDEN', null])
  const denied = await fetch(kg.url + '/api/v1/auth/me', { headers: { origin: allowed } })
  t.same([denied.status, denied.headers.get('access-control-allow-origin'), denied.headers.get('vary'), denied.headers.get('access-control-expose-headers')], [401, allowed, 'Origin', 'x-request-id, ratelimit, ratelimit-policy, retry-after'], 'a 401 carries the CORS headers too')
  const missing = await fetch(kg.url + '/nowhere', { headers: { origin: allowed } })
  t.same([missing.status, missing.headers.get('access-control-allow-origin')], [404, allowed], 'and a 404')

  const ok = await run(allowed)
  t.same({ login: ok.login, user: ok.user, me: ok.me, meUser: ok.meUser, error: ok.error }, { login: 200, user: BOOTSTRAP.username, me: 200, meUser: BOOTSTRAP.username, error: undefined }, 'login and /me from the allowed origin')
  t.match(ok.requestId, /.+/, 'x-request-id is exposed to the script')
  t.equal(ok.refresh, 200, 'the refresh cookie set by login travels with credentials: include')

  const refused = await run(`http://localhost:${port}`)
  t.match(refused.error, /TypeError/, 'from another origin the browser refuses the call')
  t.equal(refused.login, undefined, 'and the script never sees an answer')
})
