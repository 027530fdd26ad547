import t from 'tap'
import { normalizePath } from '../../../gateway/stage-path.ts'

const INVALID = { ok: false, code: 'PATH_INVALID' }

t.test('an ordinary path passes through unchanged with its query string', async (t) => {
  t.same(normalizePath('/api/v1/documents/42'), { ok: true, path: '/api/v1/documents/42', search: '' })
  t.same(normalizePath('/api/v1/documents?limit=10&q=a%2Fb'), { ok: true, path: '/api/v1/documents', search: '?limit=10&q=a%2Fb' })
  t.same(normalizePath('/'), { ok: true, path: '/', search: '' })
})

t.test('dot segments are refused, plain or percent-encoded in any case', async (t) => {
  for (const target of ['/api/../admin', '/api/..', '/..', '/api/./x', '/api/%2e%2e/admin', '/api/%2E%2E/admin', '/api/.%2e/admin', '/api/%2e/x']) {
    t.same(normalizePath(target), INVALID, target)
  }
})

t.test('a dot segment with path parameters is refused, as an upstream that strips them would resolve it', async (t) => {
  for (const target of ['/public/..;/private', '/public/..;x=1/private', '/public/.;/x', '/public/..%3b/private', '/public/%2e%2e;/private', '/public/..;']) {
    t.same(normalizePath(target), INVALID, target)
  }
  t.same(normalizePath('/public/a;b/..c;d'), { ok: true, path: '/public/a;b/..c;d', search: '' }, 'other segments with parameters pass')
})

t.test('encoded slash, encoded and raw backslash and NUL are refused', async (t) => {
  for (const target of ['/api/a%2fb', '/api/a%2Fb', '/api/a%5cb', '/api/a%5Cb', '/api/a\\b', '/api/a%00b', '/api/a\u0000b']) {
    t.same(normalizePath(target), INVALID, JSON.stringify(target))
  }
})

t.test('control characters are refused, raw or encoded, in the path and in the query', async (t) => {
  for (const target of ['/api/a%0ab', '/api/a%0Db', '/api/a\tb', '/api/a%7fb', '/api/x?q=a\nb']) {
    t.same(normalizePath(target), INVALID, JSON.stringify(target))
  }
})

t.test('overlong UTF-8 and invalid UTF-8 are refused', async (t) => {
  for (const target of ['/api/%c0%ae%c0%ae/admin', '/api/%c0%af', '/api/%e0%80%ae', '/api/%ff', '/api/%c3']) {
    t.same(normalizePath(target), INVALID, target)
  }
})

t.test('invalid percent encoding is refused', async (t) => {
  for (const target of ['/api/%', '/api/%zz', '/api/%4', '/api/100%']) {
    t.same(normalizePath(target), INVALID, target)
  }
})

t.test('a target that is not origin-form is refused', async (t) => {
  for (const target of [undefined, '', '*', 'http://evil.example/api', 'api/v1']) {
    t.same(normalizePath(target), INVALID, String(target))
  }
})

t.test('repeated slashes collapse to one', async (t) => {
  t.same(normalizePath('//a//b'), { ok: true, path: '/a/b', search: '' })
  t.same(normalizePath('/api///v1//documents/?x=//y'), { ok: true, path: '/api/v1/documents/', search: '?x=//y' })
})

t.test('valid UTF-8 and ordinary percent-encodings are kept encoded', async (t) => {
  t.same(normalizePath('/docs/caf%C3%A9'), { ok: true, path: '/docs/caf%C3%A9', search: '' })
  t.same(normalizePath('/docs/a%20b'), { ok: true, path: '/docs/a%20b', search: '' })
})

t.test('percent-encoded unreserved characters are decoded, so a route cannot be dodged by spelling it differently', async (t) => {
  t.same(normalizePath('/api/v1/%64ocuments/1'), { ok: true, path: '/api/v1/documents/1', search: '' })
  t.same(normalizePath('/%61%44%6d%49%6e/%7e%5f%2d%30'), { ok: true, path: '/aDmIn/~_-0', search: '' })
  t.same(normalizePath('/a?q=%61'), { ok: true, path: '/a', search: '?q=%61' }, 'the query is left alone')
})
