import { readFileSync } from 'node:fs'
import { Router, type Response } from 'express'

/**
 * The key console, `/console`: one HTML page, its script and its style sheet, served by the admin API on the API's
 * own origin (the gateway routes `/console` here as a public route). The script is built from `console/src` by
 * `npm run build:console` and committed (`admin-api/console/console.js`); a test fails when it is out of date.
 *
 * Every answer carries a Content Security Policy that allows scripts, styles and connections from this origin
 * only: no inline script, no `eval`, nothing framed (`frame-ancestors 'none'`), forms posted nowhere.
 */
export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "form-action 'none'", "base-uri 'none'", "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
}

export function consoleRoutes(): Router {
  const r = Router({ strict: true })
  // Read once: three small files, beside this module in the sources and in dist/ alike.
  const bodies = new Map(Object.entries(ASSETS).map(([path, a]) => [path, readFileSync(new URL(`./console/${a.file}`, import.meta.url))]))
  const send = (res: Response, path: string, head: boolean) => {
    const a = ASSETS[path]!
    const body = bodies.get(path)!
    // The script and style sheet are revalidated every time (they change with each release). The page itself is
    // never stored, so the back/forward cache cannot bring back a page that still showed a new key's secret.
    const cache = path === '/' ? 'no-store' : 'no-cache, private'
    res.status(200).set({ ...SECURITY_HEADERS, 'content-type': a.type, 'content-length': String(body.length), 'cache-control': cache })
    res.end(head ? undefined : body)
  }
  r.get('/', (req, res) => {
    // `/console` without its slash: the page's relative asset URLs need it.
    if (req.originalUrl.split('?')[0] === '/console') return res.status(308).set({ ...SECURITY_HEADERS, location: '/console/' }).end()
    send(res, '/', req.method === 'HEAD')
  })
  r.get(['/console.js', '/console.css'], (req, res) => send(res, req.path, req.method === 'HEAD'))
  return r
}
