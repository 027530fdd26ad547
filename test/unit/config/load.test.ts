import t from 'tap'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../../core/errors.ts'
import { loadConfig, loadEnv, parseFileConfig } from '../../../config/load.ts'

const FILE = 'routes.yaml'
const COMMITTED = fileURLToPath(new URL('../../../config/keygate.yaml', import.meta.url))

/** The problems of the ConfigError `loadConfig` throws for `env`. */
function problemsOf(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('loadConfig accepted an invalid environment')
}

const VALID = `
upstreams:
  docs:
    url: http://127.0.0.1:9000
  admin:
    url: internal:admin
routes:
  - name: login
    prefix: /api/v1/auth/login
    methods: [POST]
    upstream: admin
    auth: public
  - name: documents
    prefix: /api/v1/documents
    upstream: docs
`

t.test('a valid file parses, with every route default filled in', async (t) => {
  const { config, problems } = parseFileConfig(VALID, FILE, {})
  t.same(problems, [])
  t.same(config?.upstreams, { docs: { url: 'http://127.0.0.1:9000' }, admin: { url: 'internal:admin' } })
  t.same(config?.routes[1], {
    name: 'documents', prefix: '/api/v1/documents', upstream: 'docs',
    auth: 'required', scopes: [], timeout_ms: 30_000, idle_timeout_ms: 60_000, max_body_bytes: 10 * 1024 * 1024,
    strip_prefix: false, bind_request: false, websockets: false, plain_identity_headers: false, forward_authorization: false,
    case_sensitive: false, read_body_first: false, body_timeout_ms: 10_000,
  })
  t.same(config?.routes[0]?.methods, ['POST'])
  t.equal(config?.routes[0]?.auth, 'public')
  t.equal(config?.routes[0]?.read_body_first, true, 'a public route reads its body first by default')
})

t.test('an unknown field is a problem naming the file and where it is', async (t) => {
  const { config, problems } = parseFileConfig(VALID.replace('    upstream: docs\n', '    upstream: docs\n    timeout: 5\n'), FILE, {})
  t.equal(config, undefined)
  t.equal(problems.length, 1)
  t.match(problems[0], /^routes\.yaml routes\[1\] \(route "documents"\): unknown field "timeout"; a route's fields are name, prefix, /)
})

t.test('a route naming an upstream that does not exist is a problem at routes[i].upstream', async (t) => {
  const { config, problems } = parseFileConfig(VALID.replace('upstream: docs', 'upstream: documents'), FILE, {})
  t.equal(config, undefined)
  t.equal(problems.length, 1)
  t.match(problems[0], /^routes\.yaml routes\[1\]\.upstream \(route "documents"\): "documents" is not one of the upstreams \(docs, admin\)/)
})

t.test('a duplicate route name is a problem at routes[i].name', async (t) => {
  const { problems } = parseFileConfig(VALID.replace('name: documents', 'name: login'), FILE, {})
  t.equal(problems.length, 1)
  t.match(problems[0], /^routes\.yaml routes\[1\]\.name \(route "login"\): duplicate route name "login"/)
})

t.test('every problem of one file is listed, not only the first', async (t) => {
  const text = VALID.replace('name: documents', 'name: login').replace('upstream: docs', 'upstream: nowhere')
  const { problems } = parseFileConfig(text, FILE, {})
  t.equal(problems.length, 2)
  t.match(problems[0], /routes\[1\]\.name/)
  t.match(problems[1], /routes\[1\]\.upstream/)
})

t.test('schema violations name the path of each offending value', async (t) => {
  const text = VALID.replace('prefix: /api/v1/documents', 'prefix: api/v1/documents').replace('methods: [POST]', 'methods: [FETCH]')
  const { problems } = parseFileConfig(text, FILE, {})
  t.equal(problems.length, 2)
  t.ok(problems.some((p) => p.startsWith('routes.yaml routes[0].methods[0] (route "login"):')), 'methods[0]')
  t.ok(problems.some((p) => p.startsWith('routes.yaml routes[1].prefix (route "documents"):')), 'prefix')
})

t.test('a ${VAR} without a default whose variable is unset is a problem naming the file and the path', async (t) => {
  const text = VALID.replace('url: http://127.0.0.1:9000', 'url: ${DOCS_URL}')
  const { config, problems } = parseFileConfig(text, FILE, {})
  t.equal(config, undefined)
  t.equal(problems.length, 1)
  t.match(problems[0], /^routes\.yaml upstreams\.docs\.url: \$\{DOCS_URL\} is used but the environment variable DOCS_URL is not set/)
  const inRoute = parseFileConfig(VALID.replace('upstream: docs', 'upstream: ${DOCS_UPSTREAM}'), FILE, {})
  t.match(inRoute.problems[0], /^routes\.yaml routes\[1\]\.upstream: \$\{DOCS_UPSTREAM\}/)
  t.same(parseFileConfig(text, FILE, { DOCS_URL: '' }).problems.length, 1, 'an empty variable counts as unset')
})

t.test('${VAR} takes the environment value and ${VAR:-default} falls back to its default', async (t) => {
  const text = VALID.replace('url: http://127.0.0.1:9000', 'url: ${DOCS_URL:-http://10.0.0.5:8080}')
  t.equal(parseFileConfig(text, FILE, {}).config?.upstreams.docs?.url, 'http://10.0.0.5:8080')
  t.equal(parseFileConfig(text, FILE, { DOCS_URL: 'http://docs:80' }).config?.upstreams.docs?.url, 'http://docs:80')
  const required = VALID.replace('url: http://127.0.0.1:9000', 'url: ${DOCS_URL}')
  t.equal(parseFileConfig(required, FILE, { DOCS_URL: 'http://docs:80' }).config?.upstreams.docs?.url, 'http://docs:80')
})

t.test('a ${VAR} in a comment is not interpolated and is no problem', async (t) => {
  const text = `# Point docs at \${NOT_SET_ANYWHERE} if you like\n${VALID.replace('    upstream: docs', '    upstream: docs # or ${ALSO_NOT_SET}')}`
  const { config, problems } = parseFileConfig(text, FILE, {})
  t.same(problems, [])
  t.equal(config?.routes[1]?.upstream, 'docs')
})

t.test('YAML syntax errors are problems naming the file', async (t) => {
  const { config, problems } = parseFileConfig('upstreams: [unclosed\nroutes: {', FILE, {})
  t.equal(config, undefined)
  t.ok(problems.length >= 1)
  for (const p of problems) t.ok(p.startsWith('routes.yaml: '), p)
})

t.test('the committed keygate.yaml loads with the defaults of the environment', async (t) => {
  const config = loadConfig({ KEYGATE_CONFIG: COMMITTED })
  t.equal(config.env.PORT, 8000)
  t.equal(config.file.upstreams.admin?.url, 'internal:admin')
  t.ok(Object.isFrozen(config.file.routes[0]), 'deep-frozen')
})

t.test('an environment with several problems lists every one of them in the ConfigError', async (t) => {
  t.throws(() => loadConfig({ KEYGATE_CONFIG: COMMITTED, PORT: 'eighty' }), ConfigError)
  const env = {
    KEYGATE_CONFIG: COMMITTED,
    PORT: 'eighty',
    LOG_LEVEL: 'loud',
    KEYGATE_JWT_SECRET: 'too-short',
    KEYGATE_BOOTSTRAP_USERNAME: 'alice',
  }
  const problems = problemsOf(env)
  t.equal(problems.length, 4, problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('environment PORT:')), 'PORT')
  t.ok(problems.some((p) => p.startsWith('environment LOG_LEVEL:')), 'LOG_LEVEL')
  t.ok(problems.some((p) => p.startsWith('environment KEYGATE_JWT_SECRET:')), 'KEYGATE_JWT_SECRET')
  t.ok(problems.some((p) => p.includes('KEYGATE_BOOTSTRAP_USERNAME, KEYGATE_BOOTSTRAP_EMAIL and KEYGATE_BOOTSTRAP_PASSWORD')), 'bootstrap pair')
})

t.test('environment problems and a file problem are listed together', async (t) => {
  const problems = problemsOf({ KEYGATE_CONFIG: '/nonexistent/keygate.yaml', PORT: '70000' })
  t.equal(problems.length, 2, problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('environment PORT:')), 'PORT')
  t.ok(problems.some((p) => p.startsWith('/nonexistent/keygate.yaml: cannot read the configuration file (ENOENT)')), 'the unreadable file')
})

t.test('a process that serves no routes loads the environment alone, listing missing required settings with every other problem', async (t) => {
  const required = [{ name: 'DATABASE_URL', why: 'here' }, { name: 'KEYGATE_JWKS_URL', why: 'here' }] as const
  const env = loadEnv({ KEYGATE_CONFIG: '/nonexistent/keygate.yaml', DATABASE_URL: 'postgres://db/keygate', KEYGATE_JWKS_URL: 'http://gw:8000/.well-known/jwks.json' }, required)
  t.equal(env.KEYGATE_JWKS_URL, 'http://gw:8000/.well-known/jwks.json', 'no route file is read')
  t.ok(Object.isFrozen(env), 'frozen')
  let problems: readonly string[] = []
  try {
    loadEnv({ PORT: 'eighty', KEYGATE_JWKS_URL: 'file:///etc/passwd' }, required)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    problems = err.problems
  }
  t.equal(problems.length, 3, problems.join('\n'))
  t.ok(problems.some((p) => p.startsWith('environment PORT:')), 'PORT')
  t.ok(problems.some((p) => p.startsWith('environment KEYGATE_JWKS_URL:')), 'a key set URL that is not http(s)')
  t.ok(problems.some((p) => p === 'environment: DATABASE_URL is required here'), 'the missing DATABASE_URL')
})
