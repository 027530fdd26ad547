import { Agent, request } from 'undici'
import t, { type Test } from 'tap'
import { apiKeyFormat } from '../../core/api-key-format.ts'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { echoGateway } from '../helpers/echo-gateway.ts'

/**
 * A flood of made-up API keys with valid checksums: each passes the format check and misses every cache, so
 * each cost a database lookup, and the flood raised everyone's latency. The legitimate client's p50 is
 * measured alone, then under the flood with and without the per-address limit on unknown-key lookups.
 */
const FLOOD_MS = 3000
const FLOODERS = 8

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

async function dbLoads(metricsPort: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text())
  return Number(/keygate_cache_lookups_total\{layer="db",result="load"\} (\d+)/.exec(text)?.[1] ?? 0)
}

async function scenario(t: Test, label: string, lookups: string) {
  const { kg } = await echoGateway(t, label, { routes: '- { name: echo, prefix: /echo, upstream: echo }', env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8', KEYGATE_UNKNOWN_KEY_LOOKUPS: lookups, LOG_LEVEL: 'warn' } })
  const jwt: string = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  const key: string = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'legit' } })).json.api_key
  const agent = new Agent({ connections: 32 })
  t.teardown(() => agent.close())
  const get = async (credential: string, address: string) => {
    const res = await request(`${kg.url}/echo/x`, { dispatcher: agent, headers: { authorization: `Bearer ${credential}`, 'x-forwarded-for': address } })
    const body = await res.body.text()
    return { status: res.statusCode, code: /"code":"([A-Z_]+)"/.exec(body)?.[1] }
  }
  const legit = async (until: () => boolean) => {
    const times: number[] = []
    while (until()) {
      const start = performance.now()
      const res = await get(key, '203.0.113.5')
      times.push(performance.now() - start)
      if (res.status !== 200) throw new Error(`legitimate request answered ${res.status}`)
    }
    return times
  }
  await legit(((n) => () => n-- > 0)(50))
  const alone = median(await legit(((n) => () => n-- > 0)(300)))

  const format = apiKeyFormat('sk_live_')
  const loadsBefore = await dbLoads(kg.metricsPort)
  const answers = new Map<string, number>()
  const end = performance.now() + FLOOD_MS
  const running = () => performance.now() < end
  const flood = Array.from({ length: FLOODERS }, async () => {
    while (running()) {
      const res = await get(format.generate().key, '198.51.100.66')
      const k = `${res.status} ${res.code}`
      answers.set(k, (answers.get(k) ?? 0) + 1)
    }
  })
  const [underFlood] = await Promise.all([legit(running), ...flood])
  const loads = (await dbLoads(kg.metricsPort)) - loadsBefore
  return { kg, get, alone, underFlood: median(underFlood), answers, loads, sent: [...answers.values()].reduce((a, b) => a + b, 0) }
}

t.test('a flood of unknown keys with valid checksums', async (t) => {
  await t.test('without a per-address limit (the lookups the flood used to cost)', async (t) => {
    const r = await scenario(t, 'flood_unlimited', '1000000')
    t.ok(r.loads >= r.sent * 0.9, `${r.loads} database lookups for ${r.sent} made-up keys`)
    t.comment(`figure: legitimate p50 ${r.alone.toFixed(2)} ms alone, ${r.underFlood.toFixed(2)} ms under ${r.sent} unknown keys without the limit`)
  })

  await t.test('with the limit: the flooding address causes at most KEYGATE_UNKNOWN_KEY_LOOKUPS lookups (the legitimate client\'s p50 is printed as a figure)', async (t) => {
    const r = await scenario(t, 'flood_limited', '50')
    t.equal(r.answers.get('401 KEY_UNKNOWN'), 50, `50 of ${r.sent} made-up keys from one address were looked up (limit 50 per 10 s), and were unknown`)
    t.equal(r.answers.get('429 KEY_LOOKUPS_LIMITED'), r.sent - 50, 'the rest are refused without a lookup')
    t.comment(`figure: legitimate p50 ${r.alone.toFixed(2)} ms alone, ${r.underFlood.toFixed(2)} ms under ${r.sent} unknown keys with the limit`)

    const before = await dbLoads(r.kg.metricsPort)
    const oneKey = apiKeyFormat('sk_live_').generate().key
    for (let i = 0; i < 100; i++) t.equal((await r.get(oneKey, '192.0.2.44')).code, 'KEY_UNKNOWN')
    t.equal((await dbLoads(r.kg.metricsPort)) - before, 1, 'one made-up key sent 100 times costs one lookup: the unknown answer is cached per key hash')
  })
})
