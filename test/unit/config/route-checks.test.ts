import t from 'tap'
import { parseFileConfig } from '../../../config/load.ts'

/**
 * The route file checks that catch the dangerous mistakes: a route that can never match, a prefix written as
 * a pattern, and messages that name the route and say what was allowed.
 */
const FILE = 'routes.yaml'
const file = (...routes: string[]) => `upstreams:\n  e: { url: "http://127.0.0.1:9" }\nroutes:\n${routes.map((r) => `  - { ${r} }\n`).join('')}`
const problemsOf = (...routes: string[]) => parseFileConfig(file(...routes), FILE, {}).problems

t.test('a route with the same prefix as an earlier route that takes all its requests is refused, naming both', async (t) => {
  const problems = problemsOf('name: billing, prefix: /billing/, upstream: e', 'name: billing-v2, prefix: /billing, upstream: e, methods: [GET]')
  t.equal(problems.length, 1, problems.join('\n'))
  t.match(problems[0], /^routes\.yaml routes\[1\]\.prefix \(route "billing-v2"\): never matches: route "billing" \(routes\[0\]\) has the same prefix "\/billing"/)
  t.match(problemsOf('name: a, prefix: /x, upstream: e', 'name: b, prefix: /x, upstream: e')[0], /routes\[1\]\.prefix \(route "b"\): never matches: route "a"/, 'equal prefixes, every method on both')
  t.match(problemsOf('name: a, prefix: /x, upstream: e, methods: [GET, POST]', 'name: b, prefix: /x, upstream: e, methods: [POST]')[0], /route "b".*never matches/, 'methods all taken by the first')
})

t.test('prefixes that differ only in case shadow each other unless the first is case-sensitive', async (t) => {
  t.match(problemsOf('name: a, prefix: /Billing, upstream: e', 'name: b, prefix: /billing/, upstream: e')[0], /route "b".*never matches: route "a"/, 'a case-insensitive /Billing takes every path of /billing/')
  t.same(problemsOf('name: a, prefix: /Billing, upstream: e, case_sensitive: true', 'name: b, prefix: /billing, upstream: e'), [], 'a case-sensitive first route leaves the other spellings to the second')
  t.match(problemsOf('name: a, prefix: /x, upstream: e, case_sensitive: true', 'name: b, prefix: /x, upstream: e, case_sensitive: true')[0], /route "b".*never matches/, 'two case-sensitive routes of one spelling')
})

t.test('a route tried first because of its host shadows a later host it covers', async (t) => {
  const problems = problemsOf('name: any, prefix: /h, upstream: e, host: "*.example.com"', 'name: one, prefix: /h, upstream: e, host: api.example.com')
  t.match(problems[0], /route "one".*never matches: route "any"/)
  t.equal(problems.length, 1)
})

t.test('routes that share a prefix but split the requests are accepted', async (t) => {
  t.same(problemsOf('name: a, prefix: /x, upstream: e, methods: [GET]', 'name: b, prefix: /x, upstream: e'), [], 'the second takes the other methods')
  t.same(problemsOf('name: a, prefix: /x, upstream: e, host: a.example.com', 'name: b, prefix: /x, upstream: e'), [], 'the second takes the other hosts')
  t.same(problemsOf('name: a, prefix: /x, upstream: e', 'name: b, prefix: /x, upstream: e, host: a.example.com'), [], 'a host route is tried before a route without one, whatever the order in the file')
  t.same(problemsOf('name: all, prefix: /, upstream: e', 'name: x, prefix: /x, upstream: e'), [], 'a shorter prefix never hides a longer one: the longest wins')
})

t.test('a prefix that looks like a glob is refused with the literal prefix to write instead', async (t) => {
  const problems = problemsOf('name: billing, prefix: "/billing/*", upstream: e')
  t.equal(problems.length, 1)
  t.match(problems[0], /^routes\.yaml routes\[0\]\.prefix \(route "billing"\): "\/billing\/\*" looks like a pattern.*write "\/billing"/)
  t.match(problemsOf('name: all, prefix: "/*", upstream: e')[0], /write "\/"/)
  t.match(problemsOf('name: api, prefix: "/api/**/v1", upstream: e')[0], /write "\/api"/)
})

t.test('a bad value of a route names the route, what was allowed and what was written', async (t) => {
  const problems = problemsOf('name: billing, prefix: /billing, upstream: e, strip_prefix: yes, timeout_ms: 5min, auth: sometimes, methods: [GET, FETCH], max_body_bytes: -1')
  const byField = (field: string) => problems.find((p) => p.startsWith(`routes.yaml routes[0].${field} (route "billing"): `))
  t.match(byField('strip_prefix'), /: expected true or false, got "yes"$/)
  t.match(byField('timeout_ms'), /: expected milliseconds as a number, got "5min"$/)
  t.match(byField('auth'), /: expected public, optional, required, got "sometimes"$/)
  t.match(byField('methods[1]'), /: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got "FETCH"$/)
  t.match(byField('max_body_bytes'), /: expected bytes as a whole number, 0 or more, got -1$/)
  t.equal(problems.length, 5, problems.join('\n'))
  t.match(problemsOf('name: r, prefix: /r, upstream: e, idle_timeout_ms: 7200000')[0], /idle_timeout_ms \(route "r"\): expected milliseconds as a whole number from 1 to 3600000, got 7200000$/)
  t.match(problemsOf('name: r, prefix: /r, upstream: e, timeout: 5')[0], /^routes\.yaml routes\[0\] \(route "r"\): unknown field "timeout"; a route's fields are name, prefix, .*timeout_ms/)
})

t.test('a refused upstream URL is never repeated in the message: it may hold credentials', async (t) => {
  const { problems } = parseFileConfig('upstreams:\n  e: { url: "ftp://user:s3cret@db:21" }\nroutes:\n  - { name: r, prefix: /r, upstream: e }\n', FILE, {})
  t.equal(problems.length, 1)
  t.notMatch(problems[0], /s3cret/)
})

t.test('a prefix under the reserved /_keygate/ is refused: the decision endpoint lives there and nothing there is routed', async (t) => {
  for (const prefix of ['/_keygate', '/_keygate/', '/_keygate/decide', '/_KEYGATE/x']) {
    const problems = problemsOf(`name: shadow, prefix: "${prefix}", upstream: e`)
    t.equal(problems.length, 1, prefix)
    t.match(problems[0], /routes\[0\]\.prefix \(route "shadow"\): ".*" is under \/_keygate\/, which the gateway reserves/, prefix)
  }
  t.same(problemsOf('name: near, prefix: /_keygates, upstream: e'), [], 'a longer segment is not under it')
})
