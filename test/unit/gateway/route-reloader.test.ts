import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeAll, type Cleanups } from '../../../core/cleanups.ts'
import { jsonLogger } from '../../../core/logger.ts'
import { routeReloader } from '../../../gateway/route-reloader.ts'
import type { Route } from '../../../gateway/router.ts'

/**
 * The route file watch, on real files: replaced by an editor, edited through a symbolic link, and updated the
 * way the kubelet updates a ConfigMap volume (AtomicWriter in kubernetes/pkg/volume/util/atomic_writer.go).
 */
const routeFile = (...names: string[]) => `upstreams:\n  echo: { url: "http://127.0.0.1:9" }\nroutes:\n${names.map((n) => `  - { name: ${n}, prefix: /${n}, upstream: echo }\n`).join('')}`

function watched(t: Test, filePath: string) {
  const applied: string[][] = []
  const logs: Array<{ msg: string; trigger?: string; problems?: string[] }> = []
  const cleanups: Cleanups = []
  const reloader = routeReloader({
    filePath, rawEnv: {}, internal: new Map(), watch: true, cleanups,
    apply: (routes: Route[]) => void applied.push(routes.map((r) => r.name)),
    logger: jsonLogger({ level: 'info', write: (line) => void logs.push(JSON.parse(line)) }),
  })
  t.teardown(() => closeAll(cleanups))
  /** Resolves with the names of the next routes applied, or undefined after `ms`. */
  const next = async (ms = 3000): Promise<string[] | undefined> => {
    const seen = applied.length
    const end = Date.now() + ms
    while (Date.now() < end) {
      if (applied.length > seen) return applied.at(-1)
      await new Promise((r) => setTimeout(r, 20))
    }
    return undefined
  }
  return { reloader, applied, logs, next }
}

/** A ConfigMap volume as the kubelet lays it out: each key a link through `..data` to a timestamped directory. */
function configMapVolume(dir: string, files: Record<string, string>) {
  let version = 0
  const write = (content: Record<string, string>) => {
    // ..2026_12_05_13_00_00.123456789: a new directory per update.
    const ts = `..2026_12_05_13_00_0${version}.${String(++version).padStart(9, '0')}`
    mkdirSync(join(dir, ts))
    for (const [name, text] of Object.entries(content)) writeFileSync(join(dir, ts, name), text, { mode: 0o644 })
    return ts
  }
  const first = write(files)
  symlinkSync(first, join(dir, '..data'))
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name))
  return {
    /** The kubelet's update: new directory, `..data_tmp` link to it, renamed over `..data` (atomic), old directory removed. */
    update(content: Record<string, string>) {
      const old = readlinkSync(join(dir, '..data'))
      const ts = write(content)
      symlinkSync(ts, join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
      rmSync(join(dir, old), { recursive: true })
    },
  }
}

t.test('a ConfigMap update (the ..data link swapped to a new directory) is seen and applied, again and again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-configmap-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const volume = configMapVolume(dir, { 'keygate.yaml': routeFile('one') })
  const w = watched(t, join(dir, 'keygate.yaml'))

  volume.update({ 'keygate.yaml': routeFile('one', 'two') })
  t.same(await w.next(), ['one', 'two'], 'the first update is applied')
  volume.update({ 'keygate.yaml': routeFile('three') })
  t.same(await w.next(), ['three'], 'so is the next one (the watch followed the link to the new directory)')
  t.same(w.logs.filter((l) => l.msg === 'routes reloaded').map((l) => l.trigger), ['file change', 'file change'], 'each logged as a file change')
})

t.test('an invalid ConfigMap update is refused and the next valid one is applied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-configmap-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const volume = configMapVolume(dir, { 'keygate.yaml': routeFile('one') })
  const w = watched(t, join(dir, 'keygate.yaml'))

  volume.update({ 'keygate.yaml': routeFile('one').replace('upstream: echo', 'upstream: nowhere') })
  t.equal(await w.next(1000), undefined, 'nothing applied')
  const refused = w.logs.find((l) => l.msg === 'route reload failed; the previous routes keep serving')
  t.match(refused?.problems?.join('\n'), /routes\[0\]\.upstream/, 'the refusal names the problem')
  volume.update({ 'keygate.yaml': routeFile('four') })
  t.same(await w.next(), ['four'], 'the corrected file is applied')
})

t.test('an update of another key of the same ConfigMap reloads nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-configmap-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const volume = configMapVolume(dir, { 'keygate.yaml': routeFile('one'), 'other.txt': 'a' })
  const w = watched(t, join(dir, 'keygate.yaml'))
  volume.update({ 'keygate.yaml': routeFile('one'), 'other.txt': 'b' })
  t.equal(await w.next(1000), undefined, 'the route file reads the same: no reload')
  t.same(w.logs, [], 'and nothing logged')
})

t.test('an edit of the file a symbolic link points to, in another directory, is seen and applied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-link-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'etc'))
  mkdirSync(join(dir, 'srv'))
  writeFileSync(join(dir, 'srv', 'routes.yaml'), routeFile('one'))
  symlinkSync(join(dir, 'srv', 'routes.yaml'), join(dir, 'etc', 'keygate.yaml'))
  const w = watched(t, join(dir, 'etc', 'keygate.yaml'))

  writeFileSync(join(dir, 'srv', 'routes.yaml'), routeFile('one', 'two'))
  t.same(await w.next(), ['one', 'two'], 'an edit in place')
  writeFileSync(join(dir, 'srv', 'routes.yaml.swp'), routeFile('three'))
  renameSync(join(dir, 'srv', 'routes.yaml.swp'), join(dir, 'srv', 'routes.yaml'))
  t.same(await w.next(), ['three'], 'a replacement, as editors save')
})

t.test('a file replaced in its own directory is applied, and SIGHUP reloads even an unchanged file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-plain-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'keygate.yaml')
  writeFileSync(file, routeFile('one'))
  const w = watched(t, file)
  writeFileSync(`${file}.tmp`, routeFile('two'))
  renameSync(`${file}.tmp`, file)
  t.same(await w.next(), ['two'], 'the replacement is applied')
  t.equal(w.reloader.reload('signal'), true, 'SIGHUP reloads')
  t.same(w.applied.at(-1), ['two'], 'the same routes again')
})
