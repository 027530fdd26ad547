import { execFileSync } from 'node:child_process'
import { get } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { runnableFile, ENTRY_POINTS } from '../../scripts/entry-points.ts'
import { BOOTSTRAP, call } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'

/** A port nobody listens on right now (the cluster primary needs fixed ports: 0 would differ per listener). */
function freePort(): Promise<number> {
  const s = createServer()
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)) }))
}

/** One request on a connection of its own, so the cluster can hand it to any worker. */
function fresh(url: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    get(url, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)) }).on('error', () => resolve(0))
  })
}

const listening = (output: string[]) => output.join('').split('\n').filter((l) => l.includes('"msg":"keygate listening"')).length

async function until(what: string, ok: () => boolean, ms = 20_000) {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('KEYGATE_WORKERS=2 runs two gateway processes on one port, sums their metrics, replaces a dead one and drains on SIGTERM', async (t) => {
  const schema = await testSchema('workers')
  const [port, metricsPort] = [await freePort(), await freePort()]
  const kg = await spawnKeygate({ DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, KEYGATE_WORKERS: '2', PORT: String(port), METRICS_PORT: String(metricsPort) })
  let stopped = false
  t.teardown(async () => { if (!stopped) await kg.stop('SIGKILL'); await schema.drop() })
  await until('both workers', () => listening(kg.output) >= 2)
  // The primary's children that run the gateway (spawnKeygate starts it compiled), and no other child it may have.
  const workers = () => execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(kg.pid)], { encoding: 'utf8' }).split('\n')
    .filter((line) => line.includes(runnableFile(ENTRY_POINTS.gateway.file, 'compiled'))).map((line) => Number(line.trim().split(/\s+/)[0]))
  t.equal(workers().length, 2, 'the primary has two worker processes')

  const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token, body: { name: 'w' } })).json.api_key
  const statuses = await Promise.all(Array.from({ length: 60 }, () => fresh(`${kg.url}/api/v1/conversations`, key)))
  t.same(statuses, Array(60).fill(200), '60 requests on fresh connections all succeed, whichever worker took them')

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  const served = [...metrics.matchAll(/^keygate_requests_total\{[^}]*route="conversations"[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
  t.equal(served, 60, 'the primary\'s /metrics sums the requests of both workers')

  const victim = workers()[0]!
  process.kill(victim, 'SIGKILL')
  await until('a replacement worker', () => listening(kg.output) >= 3)
  t.equal(workers().length, 2, 'a dead worker is replaced')
  t.notOk(workers().includes(victim), 'by a new process')
  const after = await Promise.all(Array.from({ length: 20 }, () => fresh(`${kg.url}/api/v1/conversations`, key)))
  t.same(after, Array(20).fill(200), 'requests keep succeeding after the replacement')

  stopped = true
  t.equal(await kg.stop('SIGTERM'), 0, 'SIGTERM drains the workers and the primary exits 0')
})
