import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { keygateOnPglite } from '../helpers/keygate.ts'
import { echoServer } from '../helpers/upstreams.ts'

/** The kubelet's ConfigMap layout and update (AtomicWriter): `keygate.yaml` → `..data/keygate.yaml`, `..data` swapped by rename. */
function configMapVolume(dir: string, text: string) {
  let version = 0
  const write = (content: string) => {
    const ts = `..2026_12_05_20_00_0${version}.${String(++version).padStart(9, '0')}`
    mkdirSync(join(dir, ts))
    writeFileSync(join(dir, ts, 'keygate.yaml'), content)
    return ts
  }
  symlinkSync(write(text), join(dir, '..data'))
  symlinkSync(join('..data', 'keygate.yaml'), join(dir, 'keygate.yaml'))
  return (content: string) => {
    const old = readlinkSync(join(dir, '..data'))
    symlinkSync(write(content), join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    rmSync(join(dir, old), { recursive: true })
  }
}

t.test('a gateway serving from a ConfigMap volume applies an update without a restart, and counts it', async (t) => {
  const echo = await echoServer()
  const dir = mkdtempSync(join(tmpdir(), 'keygate-configmap-'))
  t.teardown(async () => { await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const routes = (...names: string[]) => `upstreams:\n  echo: { url: "${echo.origin}" }\nroutes:\n${names.map((n) => `  - { name: ${n}, prefix: /${n}, upstream: echo, auth: public }\n`).join('')}`
  const update = configMapVolume(dir, routes('one'))
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: join(dir, 'keygate.yaml'), KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  t.equal((await fetch(`${kg.url}/two`)).status, 404, 'no route two yet')

  update(routes('one', 'two'))
  const end = Date.now() + 10_000
  while ((await fetch(`${kg.url}/two`)).status !== 200) {
    if (Date.now() > end) throw new Error('the ConfigMap update was not applied')
    await new Promise((r) => setTimeout(r, 50))
  }
  t.pass('route two serves after the ..data swap')
  const reloaded = kg.logs.find((l) => l.includes('"msg":"routes reloaded"'))
  t.match(reloaded, /"trigger":"file change","routes":2/)
  t.comment(`reload line: ${reloaded}`)
  const metrics = await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text())
  t.match(metrics, /keygate_route_reloads_total\{result="success"\} 1/)
})
