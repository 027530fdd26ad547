import t from 'tap'
import { crossSite } from '../../../admin-api/cross-site.ts'

/** The CSRF decision alone: what the browser says about where a request comes from. */
const req = (headers: Record<string, string>, encrypted = false) => ({ headers, socket: { encrypted } }) as unknown as Parameters<typeof crossSite>[0]
const TRUSTED = ['https://app.example.com']

t.test('Sec-Fetch-Site decides when a browser sends it; a listed origin always passes', async (t) => {
  t.equal(crossSite(req({ 'sec-fetch-site': 'same-origin' }), TRUSTED), false)
  t.equal(crossSite(req({ 'sec-fetch-site': 'none' }), TRUSTED), false)
  t.equal(crossSite(req({ 'sec-fetch-site': 'same-site', origin: 'https://evil.example.com' }), TRUSTED), true)
  t.equal(crossSite(req({ 'sec-fetch-site': 'cross-site' }), TRUSTED), true)
  t.equal(crossSite(req({ 'sec-fetch-site': 'Cross-Site' }), TRUSTED), true, 'case does not matter')
  t.equal(crossSite(req({ 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com' }), TRUSTED), false)
  t.equal(crossSite(req({ 'sec-fetch-site': 'something-new' }), TRUSTED), true, 'an unknown value is not trusted')
})

t.test('without Sec-Fetch-Site, Origin must be this service\'s own, as the gateway forwarded it', async (t) => {
  t.equal(crossSite(req({}), TRUSTED), false, 'no browser headers at all: a client that is not a browser')
  t.equal(crossSite(req({ origin: 'http://keys.example.com', host: 'keys.example.com' }), TRUSTED), false)
  t.equal(crossSite(req({ origin: 'https://keys.example.com', host: '127.0.0.1:4000', 'x-forwarded-host': 'keys.example.com', 'x-forwarded-proto': 'https' }), TRUSTED), false)
  t.equal(crossSite(req({ origin: 'http://keys.example.com', host: 'keys.example.com', 'x-forwarded-proto': 'https' }), TRUSTED), true, 'the scheme counts')
  t.equal(crossSite(req({ origin: 'https://keys.example.com', host: 'keys.example.com' }, true), TRUSTED), false, 'TLS on the socket itself')
  t.equal(crossSite(req({ origin: 'https://evil.example.com', host: 'keys.example.com' }), TRUSTED), true)
  t.equal(crossSite(req({ origin: 'null', host: 'keys.example.com' }), TRUSTED), true, 'an opaque origin')
  t.equal(crossSite(req({ origin: 'https://app.example.com', host: 'keys.example.com' }), TRUSTED), false)
})
