import t from 'tap'
import { ConfigError } from '../../../core/errors.ts'
import { loadEnv, parseFileConfig } from '../../../config/load.ts'

const FILE = 'routes.yaml'
const file = (route: string) => `
upstreams:
  docs: { url: "http://127.0.0.1:9000" }
routes:
  - { name: documents, prefix: /docs, upstream: docs, ${route} }
`

t.test('a route\'s rate_limit is read with its per, or none', async (t) => {
  const { config, problems } = parseFileConfig(file('rate_limit: { limit: 100, window_seconds: 60, per: user }'), FILE, {})
  t.same(problems, [])
  t.same(config?.routes[0]?.rate_limit, { limit: 100, window_seconds: 60, per: 'user' })
  t.equal(parseFileConfig(file('auth: required'), FILE, {}).config?.routes[0]?.rate_limit, undefined)
})

t.test('a bad rate_limit is refused with a message naming the field and what is expected', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['rate_limit: { limit: 0, window_seconds: 60 }', /routes\[0\]\.rate_limit\.limit.*expected requests as a whole number from 1 to 1000000/],
    ['rate_limit: { limit: 10, window_seconds: 100000 }', /rate_limit\.window_seconds.*expected seconds as a whole number from 1 to 86400/],
    ['rate_limit: { limit: 10, window_seconds: 60, per: route }', /rate_limit\.per.*expected key, user or address/],
    ['rate_limit: { limit: 10, window_seconds: 60, burst: 5 }', /rate_limit.*burst/],
    ['rate_limit: { limit: 10 }', /rate_limit\.window_seconds/],
    ['auth: public, rate_limit: { limit: 10, window_seconds: 60, per: key }', /rate_limit.*per: key on a public route.*write per: address/],
  ]
  for (const [route, message] of cases) {
    const { problems } = parseFileConfig(file(route), FILE, {})
    t.match(problems.join('\n'), message, route)
  }
})

t.test('KEYGATE_RATE_LIMIT_DEFAULT is off by default, read as LIMIT/WINDOW, and refused with the shapes it takes', async (t) => {
  t.equal(loadEnv({}).KEYGATE_RATE_LIMIT_DEFAULT, 'off')
  t.equal(loadEnv({ KEYGATE_RATE_LIMIT_DEFAULT: '600/min' }).KEYGATE_RATE_LIMIT_DEFAULT, '600/min')
  try {
    loadEnv({ KEYGATE_RATE_LIMIT_DEFAULT: '600 per minute' })
    t.fail('accepted')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.match((err as ConfigError).problems.join('\n'), /KEYGATE_RATE_LIMIT_DEFAULT.*off, or LIMIT\/WINDOW such as 100\/min/)
  }
})
