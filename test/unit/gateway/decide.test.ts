import type { IncomingMessage } from 'node:http'
import t from 'tap'
import type { Principal } from '../../../gateway/authenticator.ts'
import { accelExpires, decisionCacheSeconds, originalRequest } from '../../../gateway/decide.ts'

/** The decision endpoint's pure parts: how long an ingress may keep an answer, and how the original request is read. */
const principal = (validUntil?: number): Principal => ({ userId: 'u', username: 'alice', auth: 'api_key', scopes: ['*'], credentialId: 'c', revocationKey: 'k:x', validUntil })

t.test('an allowing decision is cacheable for the setting, within half the identity lifetime and the credential deadline', async (t) => {
  t.equal(decisionCacheSeconds(1, 60, principal(), 0), 1, 'the default')
  t.equal(decisionCacheSeconds(300, 60, principal(), 0), 30, 'never beyond half the identity lifetime')
  t.equal(decisionCacheSeconds(10, 60, principal(4_500), 0), 4, 'never past the key\'s expiry (whole seconds, rounded down)')
  t.equal(decisionCacheSeconds(10, 60, principal(500), 0), 0, 'less than a second left: not cacheable')
  t.equal(decisionCacheSeconds(10, 60, principal(-1), 0), 0, 'never negative')
  t.equal(decisionCacheSeconds(10, 60, null, 0), 10, 'a public route')
  t.equal(decisionCacheSeconds(0, 60, principal(), 0), 0, '0 turns caching off')
})

const request = (url: string, raw: string[], method = 'GET'): IncomingMessage => {
  const headers: Record<string, string> = {}
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!
  return { url, method, rawHeaders: raw, headers } as unknown as IncomingMessage
}

t.test('the original request is read from exactly one source', async (t) => {
  t.same(originalRequest(request('/_keygate/decide', ['X-Original-URI', '/a?b', 'X-Original-Method', 'POST', 'Host', 'kg', 'X-Forwarded-Host', 'app.example.com'])), { ok: true, method: 'POST', target: { url: '/a?b', host: 'app.example.com' } }, 'nginx')
  t.same(originalRequest(request('/_keygate/decide', ['X-Forwarded-Uri', '/a', 'X-Forwarded-Method', 'PUT', 'Host', 'app'])), { ok: true, method: 'PUT', target: { url: '/a', host: 'app' } }, 'Caddy, Traefik')
  t.same(originalRequest(request('/_keygate/decide/a/b?c', ['Host', 'app'], 'DELETE')), { ok: true, method: 'DELETE', target: { url: '/a/b?c', host: 'app' } }, 'Envoy')
  t.same(originalRequest(request('/_keygate/decide', ['X-Original-URL', 'https://shop.example.com/api/%2e%2e/x?y=1', 'X-Original-Method', 'GET', 'Host', 'kg'])), { ok: true, method: 'GET', target: { url: '/api/%2e%2e/x?y=1', host: 'shop.example.com' } }, 'ingress-nginx: the URL is split, not normalised')
  t.same(originalRequest(request('/_keygate/decide', ['X-Original-URL', 'http://shop.example.com', 'X-Original-Method', 'GET'])), { ok: true, method: 'GET', target: { url: '/', host: 'shop.example.com' } }, 'ingress-nginx: no path is /')
  const refused = [
    request('/_keygate/decide', ['X-Original-URL', '/a', 'X-Original-Method', 'GET']),
    request('/_keygate/decide', ['X-Original-URL', 'ftp://x/a', 'X-Original-Method', 'GET']),
    request('/_keygate/decide', ['X-Original-URL', 'http://x/a', 'X-Original-URI', '/public', 'X-Original-Method', 'GET']),
    request('/_keygate/decide', []),
    request('/_keygate/decide', ['X-Original-URI', '/a']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'X-Original-Method', 'GET', 'X-Original-Method', 'DELETE']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'x-original-uri', '/b', 'X-Original-Method', 'GET']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'X-Original-Method', 'GET, DELETE']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'X-Original-Method', 'get']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'X-Original-Method', 'GET', 'X-Forwarded-Uri', '/b']),
    request('/_keygate/decide/a', ['X-Original-URI', '/b', 'X-Original-Method', 'GET']),
    request('/_keygate/decide', ['X-Original-URI', '/a', 'X-Original-Method', 'GET', 'X_HTTP_Method_Override', 'DELETE']),
    request('/_keygate/decide/a', ['X-Method-Override', 'DELETE']),
  ]
  for (const req of refused) t.equal(originalRequest(req).ok, false, JSON.stringify(req.rawHeaders))
})

t.test('X-Accel-Expires names the last whole second an entry may be served, so nginx keeps it at most the cache time', async (t) => {
  t.equal(accelExpires(1, 100_300), '@100', 'served through second 100, gone at 101.0 (within 0.7 s)')
  t.equal(accelExpires(1, 100_999), '@100', 'gone at 101.0 (1 ms later)')
  t.equal(accelExpires(5, 100_000), '@104', 'gone at 105.0')
  t.equal(accelExpires(0, 100_000), '0', 'not cacheable')
})
