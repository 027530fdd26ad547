import t from 'tap'
import type { RouteConfig } from '../../../config/schema.ts'
import { createRouter, routeWithDefaults, type Route } from '../../../gateway/router.ts'

function route(name: string, prefix: string, extra: Partial<RouteConfig> = {}): Route {
  return routeWithDefaults({ name, prefix, upstream: 'up', ...extra })
}

const router = createRouter([
  route('api', '/api/v1'),
  route('documents', '/api/v1/documents'),
  route('document-admin', '/api/v1/documents/admin'),
  route('login', '/api/v1/auth/login', { methods: ['POST'] }),
  route('auth', '/api/v1/auth'),
  route('slash', '/static/'),
])

const nameOf = (path: string, method = 'GET') => router.match(path, method)?.name

t.test('the longest matching prefix wins, whatever the declaration order', async (t) => {
  t.equal(nameOf('/api/v1/documents/42'), 'documents')
  t.equal(nameOf('/api/v1/documents/admin/users'), 'document-admin')
  t.equal(nameOf('/api/v1/conversations'), 'api')
  t.same(router.routes.map((r) => r.name).slice(0, 2), ['document-admin', 'login'])
})

t.test('a trailing slash does not move a route ahead of one of the same prefix declared before it', async (t) => {
  const r = createRouter([route('first', '/shop', { methods: ['GET'] }), route('second', '/shop/')])
  t.equal(r.match('/shop/cart', 'GET')?.name, 'first')
  t.equal(r.match('/shop/cart', 'POST')?.name, 'second')
})

t.test('prefixes match whole segments only', async (t) => {
  t.equal(nameOf('/api/v1/documentsX'), 'api')
  t.equal(nameOf('/api/v1/documents-old/1'), 'api')
  t.equal(nameOf('/api/v1x'), undefined)
  t.equal(nameOf('/api'), undefined)
})

t.test('the prefix itself and its trailing-slash form both match', async (t) => {
  t.equal(nameOf('/api/v1/documents'), 'documents')
  t.equal(nameOf('/api/v1/documents/'), 'documents')
  t.equal(nameOf('/static'), 'slash', 'a prefix declared with a trailing slash matches without it')
  t.equal(nameOf('/static/app.js'), 'slash')
  t.equal(nameOf('/staticX'), undefined)
})

t.test('a route with methods matches only those methods, and others fall back to a shorter prefix', async (t) => {
  t.equal(nameOf('/api/v1/auth/login', 'POST'), 'login')
  t.equal(nameOf('/api/v1/auth/login', 'GET'), 'auth')
  t.equal(nameOf('/api/v1/auth/me', 'GET'), 'auth')
})

t.test('with no matching prefix or method there is no route', async (t) => {
  const only = createRouter([route('login', '/login', { methods: ['POST'] })])
  t.equal(only.match('/login', 'GET'), undefined)
  t.equal(only.match('/login', 'POST')?.name, 'login')
  t.equal(only.match('/elsewhere', 'POST'), undefined)
})

t.test('the methods allowed at a path are those of every route whose prefix and host match it', async (t) => {
  const r = createRouter([
    route('reports', '/reports', { methods: ['HEAD', 'GET'] }),
    route('reports-upload', '/reports/upload', { methods: ['POST'] }),
    route('reports-admin', '/reports', { methods: ['DELETE'], host: 'admin.example.com' }),
    route('secret', '/Secret', { methods: ['PUT'], case_sensitive: true }),
  ])
  t.equal(r.match('/reports/1', 'POST'), undefined)
  t.same(r.allowedMethods('/reports/1'), ['GET', 'HEAD'], 'in the schema\'s order, whatever the file\'s')
  t.same(r.allowedMethods('/REPORTS/upload/x'), ['GET', 'HEAD', 'POST'], 'a longer prefix adds its methods; matched as match() does')
  t.same(r.allowedMethods('/reports', 'admin.example.com:8443'), ['GET', 'HEAD', 'DELETE'], 'a route of another host only for that host')
  t.same(r.allowedMethods('/reports;x=1/upload'), ['GET', 'HEAD', 'POST'], 'with and without ;parameters, as match() reads the path')
  t.same(r.allowedMethods('/elsewhere'), [], 'no route at all')
  t.same(r.allowedMethods('/secret'), [], 'case_sensitive routes only in their case')
  t.same(r.allowedMethods('/Secret'), ['PUT'])
})

t.test('a root prefix matches every path but loses to any longer one', async (t) => {
  const withRoot = createRouter([route('root', '/'), route('docs', '/docs')])
  t.equal(withRoot.match('/anything/at/all', 'GET')?.name, 'root')
  t.equal(withRoot.match('/', 'GET')?.name, 'root')
  t.equal(withRoot.match('/docs/1', 'GET')?.name, 'docs')
})

t.test('prefixes match case-insensitively unless a route asks for exact case', async (t) => {
  const r = createRouter([route('open', '/open', { auth: 'public' }), route('secret', '/open/secret'), route('exact', '/Exact', { case_sensitive: true })])
  t.equal(r.match('/open/SECRET', 'GET')?.name, 'secret')
  t.equal(r.match('/OPEN/x', 'GET')?.name, 'open')
  t.equal(r.match('/Exact/x', 'GET')?.name, 'exact')
  t.equal(r.match('/exact/x', 'GET'), undefined)
})

t.test('a path with ; parameters meets the stricter of the routes it names with and without them', async (t) => {
  const r = createRouter([
    route('open', '/open', { auth: 'public' }), route('secret', '/open/secret'),
    route('health', '/area/health', { auth: 'public' }), route('area', '/area', { scopes: ['admin'] }),
  ])
  t.equal(r.match('/open/secret;x', 'GET')?.name, 'secret', 'a servlet reads /open/secret')
  t.equal(r.match('/open;x/secret', 'GET')?.name, 'secret')
  t.equal(r.match('/open/;x/secret', 'GET')?.name, 'secret', 'a parameters-only segment collapses')
  t.equal(r.match('/area/health;x', 'GET')?.name, 'area', 'Express reads /area/health;x as the protected area, not the public health route')
  t.equal(r.match('/open/public;x', 'GET')?.name, 'open')
})
