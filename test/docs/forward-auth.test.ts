import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { ENV_SETTINGS } from '../../config/schema.ts'
import { DECIDE_PATH, PLAIN_HEADERS } from '../../gateway/decide.ts'

/**
 * The forward-auth configurations Keygate documents but cannot run here (Traefik and Envoy have no Debian
 * package), held to the decision endpoint: each README snippet parses, asks `/_keygate/decide`, and copies every
 * header an allowing answer states (so a client's own copy is always replaced). The shipped nginx and Caddy files
 * are run by test/integration/ingress/; here they are held to the same list of headers.
 */
const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const readme = read('README.md')
const identityHeader = String(ENV_SETTINGS.KEYGATE_IDENTITY_HEADER.schema.parse(undefined))
const STATED = [identityHeader, ...PLAIN_HEADERS]

function section(heading: string): string {
  const start = readme.indexOf(`\n### ${heading}\n`)
  if (start === -1) throw new Error(`README has no section "### ${heading}"`)
  const end = readme.indexOf('\n##', start + heading.length + 6)
  return readme.slice(start, end === -1 ? undefined : end)
}
const yamlBlock = (text: string) => parse(/```yaml\n([\s\S]*?)```/.exec(text)![1]!)
const lower = (list: string[]) => list.map((h) => h.toLowerCase())

t.test('the README is under "Behind your ingress" with its trade-off table', async (t) => {
  t.match(readme, /\n## Behind your ingress\n/)
  t.match(section('Proxy mode or decision mode'), /\| Revocation \|.*\n\| Open streams at revocation \|/)
})

t.test('the Traefik snippet asks the decision endpoint and replaces every identity header', async (t) => {
  const doc = yamlBlock(section('Traefik'))
  const fa = doc.http.middlewares.keygate.forwardAuth
  t.equal(new URL(fa.address).pathname, DECIDE_PATH)
  t.equal(fa.trustForwardHeader, false, 'Traefik states the request itself, whatever the client sent')
  t.same(lower(fa.authRequestHeaders), ['authorization'], 'only the credential goes to Keygate besides what Traefik adds')
  t.same(lower(fa.authResponseHeaders).sort(), [...STATED].sort())
  t.same(doc.http.routers.app.middlewares, ['keygate'])
})

t.test('the Envoy snippet asks the decision endpoint by path prefix and replaces every identity header', async (t) => {
  const filters = yamlBlock(section('Envoy')).http_filters
  const authz = filters.find((f: { name: string }) => f.name === 'envoy.filters.http.ext_authz').typed_config
  t.equal(authz.http_service.path_prefix, DECIDE_PATH)
  t.equal(authz.failure_mode_allow, false, 'no decision, no request')
  const names = (patterns: Array<{ exact: string }>) => patterns.map((p) => p.exact).sort()
  t.same(names(authz.http_service.authorization_response.allowed_upstream_headers.patterns), [...STATED].sort())
  t.ok(names(authz.http_service.authorization_response.allowed_client_headers.patterns).includes('www-authenticate'), 'a 401 reaches the client with its challenge')
  t.equal(filters.at(-1).name, 'envoy.filters.http.router', 'the router comes last')
})

t.test('the shipped nginx and Caddy files set every header an allowing answer states', async (t) => {
  const nginx = read('deploy/nginx-forward-auth.conf').toLowerCase()
  for (const h of STATED) {
    t.match(nginx, new RegExp(`auth_request_set \\$\\w+ \\$upstream_http_${h.replaceAll('-', '_')};`), `nginx reads ${h} from the decision`)
    t.match(nginx, new RegExp(`proxy_set_header ${h} \\$\\w+;`), `nginx sets ${h} on the request`)
  }
  t.match(nginx, new RegExp(`auth_request ${DECIDE_PATH};`))
  const caddy = read('deploy/Caddyfile.forward-auth')
  const copied = lower(/copy_headers ([^\n]+)/.exec(caddy)![1]!.trim().split(/\s+/))
  t.same(copied.sort(), [...STATED].sort(), 'Caddy copies each of them')
  for (const h of STATED) t.match(caddy.toLowerCase(), new RegExp(`request_header -${h}\\n`), `Caddy removes the client's ${h} first`)
  t.match(caddy, new RegExp(`uri ${DECIDE_PATH}\\n`))
})
