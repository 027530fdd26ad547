import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import t from 'tap'
import { ROOT } from '../../scripts/entry-points.ts'
import { remoteKeySource, verifyIdentity } from '@keygate/verify'
import { compiledArgs } from '../helpers/compiled.ts'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { close, listen, routeFile } from '../helpers/upstreams.ts'

function rotate(env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...compiledArgs('cli'), 'signing-keys', 'rotate'], { cwd: ROOT, env: { ...process.env, ...env } })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('close', (code) => resolve({ code: code ?? -1, out }))
  })
}

// Long enough that a CLI run (process start, migrations check) on a loaded machine ends well inside it.
const LEAD_SEC = 12
/** Each load client's pause between an answer and its next request. */
const PACE_MS = 20

t.test('requests keep flowing while the signing key rotates twice, and no upstream rejects a valid identity', async (t) => {
  const schema = await testSchema('rotation')
  let gatewayOrigin = ''
  const verdicts = { ok: 0, failed: [] as string[] }
  const kids = new Set<string>()
  let source: ReturnType<typeof remoteKeySource> | undefined
  // An upstream like any other: it trusts only what verifies against the gateway's published key set.
  const upstream = createServer(async (req, res) => {
    source ??= remoteKeySource(`${gatewayOrigin}/.well-known/jwks.json`, { cooldownMs: 1000 })
    const header = req.headers['x-keygate-identity'] as string
    const verdict = await verifyIdentity(header, { keys: source, audience: 'svc' })
    if (verdict.ok) {
      verdicts.ok++
      kids.add(JSON.parse(Buffer.from(header.split('.')[0]!, 'base64url').toString()).kid)
    } else verdicts.failed.push(verdict.code)
    res.writeHead(verdict.ok ? 200 : 401).end()
  })
  const origin = await listen(upstream)
  const config = routeFile(`upstreams:\n  admin: { url: "internal:admin" }\n  svc: { url: "${origin}" }\nroutes:\n  - { name: login, prefix: /api/v1/auth/login, upstream: admin, auth: public }\n  - { name: auth, prefix: /api/v1/auth, upstream: admin }\n  - { name: svc, prefix: /svc, upstream: svc }\n`)
  const keyEnv = { KEYGATE_SIGNING_ALG: 'ES256', KEYGATE_SIGNING_KEY_LEAD_SEC: String(LEAD_SEC), KEYGATE_IDENTITY_TTL: '60' }
  const env = { KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', LOG_LEVEL: 'warn', ...keyEnv }
  const kg = await keygateOnPostgres('rotation', env, schema)
  gatewayOrigin = kg.url
  t.teardown(async () => { await kg.close(); await close(upstream); await schema.drop() })

  const jwks = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  t.equal(jwks.keys.length, 2, 'the current key and the next one are published from the start')
  t.ok(jwks.keys.every((k: { kty: string; alg: string }) => k.kty === 'EC' && k.alg === 'ES256'), 'ES256 keys when configured')

  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'load' } })).json.api_key
  let running = true
  let sent = 0
  const statuses = new Map<number, number>()
  // Four clients, each sending again PACE_MS after its last answer: a request starts every few milliseconds through
  // both rotations, without the load taking both cores for the half minute the rotations last.
  const worker = async (token: string) => {
    while (running) {
      const res = await fetch(`${kg.url}/svc`, { headers: { authorization: `Bearer ${token}` } })
      await res.arrayBuffer()
      sent++
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      await new Promise((r) => setTimeout(r, PACE_MS))
    }
  }
  const load = Promise.all([worker(key), worker(key), worker(jwt), worker(jwt)])
  const cliEnv = { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, LOG_LEVEL: 'silent', ...keyEnv }
  // The upstream's key cache refetches at most once a second; a next key is promoted only after LEAD_SEC of publication.
  await new Promise((r) => setTimeout(r, LEAD_SEC * 1000 + 100))
  const first = await rotate(cliEnv)
  t.equal(first.code, 0, first.out)
  const tooSoon = await rotate(cliEnv)
  t.equal(tooSoon.code, 1, 'a rotation right after another is refused: the new next key is not known widely yet')
  t.match(tooSoon.out, /KEYGATE_SIGNING_KEY_LEAD_SEC/)
  await new Promise((r) => setTimeout(r, LEAD_SEC * 1000 + 100))
  const second = await rotate(cliEnv)
  t.equal(second.code, 0, second.out)
  await new Promise((r) => setTimeout(r, 400))
  running = false
  await load

  t.same(verdicts.failed, [], 'no identity was refused by the upstream')
  t.same([...statuses.keys()], [200], `every one of ${sent} requests succeeded`)
  t.ok(sent > 50, `requests kept flowing (${sent})`)
  t.equal(kids.size, 3, 'identities were signed by the original key and by each rotated one, without a restart')
  const after = (await call(kg.url, 'GET', '/.well-known/jwks.json')).json
  t.equal(after.keys.length, 4, 'current, next and the two previous keys (their identities may still be alive) are published')
})
