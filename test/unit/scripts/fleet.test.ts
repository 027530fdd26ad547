import t from 'tap'
import { FLEET_DEFAULTS, planFleet } from '../../../scripts/fleet.ts'

const PORTS = { gateways: [8001, 8002], admin: 8010, conversations: 8011, documents: 8012 }
const byName = (members: ReturnType<typeof planFleet>) => new Map(members.map((m) => [m.name, m]))

t.test('the fleet is the compose topology: an admin API, two demos and one gateway per port, each its own process', async (t) => {
  const members = planFleet(PORTS, {})
  t.same(members.map((m) => [m.name, m.entry]), [
    ['admin-api', 'admin-api'],
    ['demo-conversations', 'demo-conversations'],
    ['demo-documents', 'demo-documents'],
    ['gateway-1', 'gateway'],
    ['gateway-2', 'gateway'],
  ])
  t.same(members.map((m) => m.env.PORT), ['8010', '8011', '8012', '8001', '8002'], 'each listens on its own port')
  t.ok(members.every((m) => m.env.METRICS_PORT === '0'), 'metrics ports never collide: each process picks a free one')
})

t.test('gateways route to the admin API and the demos; those verify identities against the first gateway\'s key set', async (t) => {
  const m = byName(planFleet(PORTS, {}))
  for (const g of ['gateway-1', 'gateway-2']) {
    t.equal(m.get(g)!.env.KEYGATE_ADMIN_URL, 'http://127.0.0.1:8010')
    t.equal(m.get(g)!.env.CONVERSATIONS_URL, 'http://127.0.0.1:8011')
    t.equal(m.get(g)!.env.DOCUMENTS_URL, 'http://127.0.0.1:8012')
    t.equal(m.get(g)!.env.KEYGATE_DEMOS, 'false', `${g} starts no demos of its own`)
  }
  for (const s of ['admin-api', 'demo-conversations', 'demo-documents']) t.equal(m.get(s)!.env.KEYGATE_JWKS_URL, 'http://127.0.0.1:8001/.well-known/jwks.json', s)
})

t.test('local PostgreSQL and Redis by default, in a schema and prefix of the fleet\'s own; the environment wins', async (t) => {
  const defaults = planFleet(PORTS, {})[0]!.env
  for (const [k, v] of Object.entries(FLEET_DEFAULTS)) t.equal(defaults[k], v, k)
  const custom = planFleet(PORTS, { DATABASE_SCHEMA: 'mine', KEYGATE_JWKS_URL: 'http://lb/.well-known/jwks.json', LOG_LEVEL: 'warn', REDIS_URL: '' })
  t.ok(custom.every((m) => m.env.DATABASE_SCHEMA === 'mine' && m.env.LOG_LEVEL === 'warn'), 'every process gets the caller\'s settings')
  t.equal(custom[0]!.env.REDIS_URL, FLEET_DEFAULTS.REDIS_URL, 'an empty variable counts as unset')
  t.equal(byName(custom).get('admin-api')!.env.KEYGATE_JWKS_URL, 'http://lb/.well-known/jwks.json', 'a key set URL given is kept')
})
