import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { ADMIN_API_REQUIRED } from '../../admin-api/main.ts'
import { createAdminServer } from '../../admin-api/server.ts'
import { parseFileConfig } from '../../config/load.ts'
import { ENV_SETTINGS } from '../../config/schema.ts'
import { closeServer, listen } from '../../core/http-listen.ts'
import { createGatewayServer } from '../../gateway/server.ts'
import { kubernetesSchemaProblems } from '../helpers/kubernetes-schema.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'

/**
 * There is no cluster here, so deploy/kubernetes is held to the Kubernetes API schemas and to the code: the
 * base and the example overlay are rendered with `kubectl kustomize`, every object is validated (no unknown
 * field), and what the manifests tell Keygate (settings, ports, probes, the image and its commands, the
 * route file, the shutdown timings) is checked against what Keygate reads, serves and does.
 */
const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> }
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }
interface Container { name: string; image: string; command?: string[]; args?: string[]; env?: EnvVar[]; ports?: Array<{ name?: string; containerPort: number }>; resources?: any; securityContext?: any; lifecycle?: any; volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>; [probe: string]: any }

/** `kubectl kustomize DIR`, parsed. kubectl is a requirement of this test, not an option: without it, fail and say so. */
function render(dir: string): K8sObject[] {
  let out: string
  try {
    out = execFileSync('kubectl', ['kustomize', new URL(dir, root).pathname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new Error('kubectl is not installed: test/docs/kubernetes.test.ts renders deploy/kubernetes with `kubectl kustomize` (install kubectl, which works offline, and run again)')
    throw new Error(`kubectl kustomize ${dir} failed: ${e.stderr ?? e.message}`)
  }
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject)
}

const RENDERS = { base: 'deploy/kubernetes/base', overlay: 'deploy/kubernetes/overlays/example' } as const
const rendered = Object.fromEntries(Object.entries(RENDERS).map(([k, dir]) => [k, render(dir)])) as Record<keyof typeof RENDERS, K8sObject[]>

const of = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind)
const named = (objects: K8sObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)
const containersOf = (d: K8sObject): Container[] => d.spec.template.spec.containers
const envOf = (c: Container) => new Map((c.env ?? []).map((e) => [e.name, e]))
const literal = (c: Container) => Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]))
const defaultOf = (name: keyof typeof ENV_SETTINGS) => String(ENV_SETTINGS[name].schema.safeParse(undefined).data)
const setting = (c: Container, name: keyof typeof ENV_SETTINGS) => literal(c)[name] ?? defaultOf(name)
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v)

// --- the Dockerfile: the image, its command and its user ------------------------------------------------
const dockerfileText = read('Dockerfile')
const instructions = dockerfileText.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
const lastFrom = instructions.map((l) => l.split(/\s+/)[0]!.toUpperCase()).lastIndexOf('FROM')
const runtimeStage = instructions.slice(lastFrom)
const imageCmd = JSON.parse(runtimeStage.find((l) => /^CMD\s/i.test(l))!.replace(/^CMD\s+/i, '')) as string[]
const imageUser = runtimeStage.filter((l) => /^USER\s/i.test(l)).at(-1)?.replace(/^USER\s+/i, '')
/** The tag of the Dockerfile's documented build command (`docker build -t keygate .`). */
const imageName = /docker build -t ([^\s:]+)/.exec(dockerfileText)?.[1]
/** Users of the official Node images, by name. */
const NODE_IMAGE_USERS: Record<string, number> = { node: 1000 }

/** Which Keygate process a container runs, from its command (none: the image's CMD). */
function entryFile(c: Container): string | undefined {
  const command = [...(c.command ?? imageCmd), ...(c.args ?? [])]
  return command.find((a) => /(^|\/)(gateway|admin-api)\/main\.[jt]s$/.test(a))?.replace(/^(.*\/)?((gateway|admin-api)\/main)\.[jt]s$/, '$2.ts')
}
function deployments(objects: K8sObject[]) {
  const all = of(objects, 'Deployment')
  const pick = (file: string) => all.filter((d) => containersOf(d).some((c) => entryFile(c) === file))
  return { all, gateways: pick('gateway/main.ts'), adminApis: pick('admin-api/main.ts') }
}

for (const [which, objects] of Object.entries(rendered)) {
  t.test(`${which}: every rendered object is valid against the Kubernetes API schema, with no unknown field`, async (t) => {
    t.ok(objects.length >= 8, `${objects.length} objects rendered`)
    for (const o of objects) t.same(kubernetesSchemaProblems(o), [], `${o.kind} ${o.metadata?.name}`)
  })
}

t.test('the schema check refuses an unknown field, a wrong type and a kind it has no schema for', async (t) => {
  const d = structuredClone(named(rendered.base, 'Deployment', 'keygate-gateway')!)
  containersOf(d)[0]!.readinesProbe = { httpGet: { path: '/readyz', port: 'http' } }
  d.spec.template.spec.terminationGracePeriod = 30
  t.same(kubernetesSchemaProblems(d).sort(), ['/spec/template/spec/containers/0/readinesProbe: unknown field', '/spec/template/spec/terminationGracePeriod: unknown field'], 'both misspelt fields found')
  const s = structuredClone(named(rendered.base, 'Service', 'keygate-gateway')!)
  s.spec.ports[0].port = '8000'
  t.equal(kubernetesSchemaProblems(s).length, 1, 'a port given as a string')
  t.match(kubernetesSchemaProblems({ apiVersion: 'example.com/v1', kind: 'Widget' })[0], /no schema/)
})

t.test('the base and the overlay deploy what the issue asks for', async (t) => {
  for (const [which, objects] of Object.entries(rendered)) {
    const { gateways, adminApis } = deployments(objects)
    t.equal(gateways.length, 1, `${which}: one gateway Deployment`)
    t.equal(adminApis.length, 1, `${which}: one admin API Deployment`)
    t.ok(gateways[0]!.spec.replicas >= 2, `${which}: ${gateways[0]!.spec.replicas} gateway replicas`)
    for (const kind of ['Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', 'ConfigMap']) t.ok(of(objects, kind).length, `${which}: a ${kind}`)
  }
  t.ok(of(rendered.overlay, 'Ingress').length, 'the overlay has an Ingress example')
  t.ok(of(rendered.overlay, 'ServiceMonitor').length, 'the overlay includes the optional ServiceMonitor')
  t.notOk(of(rendered.base, 'ServiceMonitor').length, 'the base does not need the Prometheus Operator')
  t.notOk(of(rendered.base, 'Secret').length + of(rendered.overlay, 'Secret').length, 'no Secret is shipped: the manifests refer to one by name')
})

t.test('the image is the one the Dockerfile builds, the gateway runs its CMD and the admin API the same launcher', async (t) => {
  t.ok(imageName, `the Dockerfile documents its tag (${imageName})`)
  t.ok(imageCmd.some((a) => /gateway\/main\.[jt]s$/.test(a)), `the image's CMD (${imageCmd.join(' ')}) runs the gateway`)
  for (const d of deployments(rendered.base).all) {
    for (const c of containersOf(d)) t.equal(c.image, imageName, `${d.metadata.name}/${c.name} runs ${imageName}`)
  }
  const { gateways, adminApis } = deployments(rendered.base)
  t.notOk(containersOf(gateways[0]!)[0]!.command, 'the gateway container keeps the image\'s CMD')
  t.same(containersOf(adminApis[0]!)[0]!.command, imageCmd.map((a) => a.replace(/gateway\/main(\.[jt]s)$/, 'admin-api/main$1')), 'the admin API runs the CMD\'s launcher on admin-api/main')
  for (const d of deployments(rendered.overlay).all) {
    for (const c of containersOf(d)) t.match(c.image, new RegExp(`/${imageName}:[\\w.-]+$`), `overlay: ${d.metadata.name} runs a tagged ${imageName} from a registry`)
  }
})

t.test('every container runs as the image\'s non-root user on a read-only root filesystem', async (t) => {
  const uid = NODE_IMAGE_USERS[imageUser ?? ''] ?? Number(imageUser)
  t.ok(Number.isInteger(uid) && uid > 0, `the Dockerfile's USER ${imageUser} is uid ${uid}`)
  for (const d of deployments(rendered.overlay).all) {
    const pod = d.spec.template.spec
    t.equal(pod.securityContext?.runAsNonRoot, true, `${d.metadata.name}: runAsNonRoot`)
    t.equal(pod.securityContext?.runAsUser, uid, `${d.metadata.name}: runs as uid ${uid}`)
    t.equal(pod.automountServiceAccountToken, false, `${d.metadata.name}: no API token (Keygate never calls the Kubernetes API)`)
    for (const c of containersOf(d)) {
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)
      t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`)
      t.same(c.securityContext?.capabilities?.drop, ['ALL'], `${c.name}: drops every capability`)
      const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp')
      t.ok(tmp && pod.volumes.find((v: { name: string; emptyDir?: object }) => v.name === tmp.name)?.emptyDir, `${c.name}: a writable /tmp on an emptyDir`)
    }
  }
})

t.test('every variable a manifest sets is a setting with a valid value, or a variable the route file reads', async (t) => {
  for (const [which, objects] of Object.entries(rendered)) {
    const routeFile = of(objects, 'ConfigMap').map((cm) => Object.values(cm.data ?? {}).join('\n')).join('\n')
    const routeVars = new Set([...routeFile.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!))
    for (const d of deployments(objects).all) {
      for (const c of containersOf(d)) {
        for (const e of c.env ?? []) {
          if (!Object.hasOwn(ENV_SETTINGS, e.name)) {
            t.ok(routeVars.has(e.name) && entryFile(c) === 'gateway/main.ts', `${which} ${c.name}: ${e.name} is a setting or a gateway's route file variable`)
            continue
          }
          if (e.value !== undefined) {
            const parsed = ENV_SETTINGS[e.name as keyof typeof ENV_SETTINGS].schema.safeParse(e.value)
            t.ok(parsed.success, `${which} ${c.name}: ${e.name}=${e.value} is valid`)
          } else {
            const ref = e.valueFrom?.secretKeyRef
            t.ok(ref, `${which} ${c.name}: ${e.name} is a value or a Secret reference`)
            t.equal(ref?.key, e.name, `${which} ${c.name}: ${e.name} comes from the Secret key of the same name`)
          }
        }
      }
    }
  }
})

t.test('secrets come from one Secret by reference, and both processes share the database, the bus and the token secret', async (t) => {
  const { gateways, adminApis } = deployments(rendered.base)
  const [gw, admin] = [containersOf(gateways[0]!)[0]!, containersOf(adminApis[0]!)[0]!]
  for (const c of [gw, admin]) {
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'KEYGATE_JWT_SECRET', 'KEYGATE_SIGNING_KEY', 'KEYGATE_BOOTSTRAP_PASSWORD']) {
      const e = envOf(c).get(name)
      if (e) t.ok(e.valueFrom?.secretKeyRef?.name === 'keygate', `${c.name}: ${name} from the Secret keygate, never a literal`)
    }
  }
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'KEYGATE_JWT_SECRET']) t.same(envOf(gw).get(name), envOf(admin).get(name), `both read ${name} from the same place`)
  for (const name of ['DATABASE_URL', 'REDIS_URL']) t.notOk(envOf(gw).get(name)?.valueFrom?.secretKeyRef?.optional, `${name} is required`)
  for (const r of ADMIN_API_REQUIRED) t.ok(envOf(admin).has(r.name), `the admin API has ${r.name}, which it requires`)
  for (const name of ['KEYGATE_ISSUER', 'KEYGATE_IDENTITY_HEADER', 'KEYGATE_REDIS_PREFIX', 'DATABASE_SCHEMA']) t.equal(setting(gw, name as keyof typeof ENV_SETTINGS), setting(admin, name as keyof typeof ENV_SETTINGS), `both agree on ${name}`)
})

t.test('ports: containers expose PORT and METRICS_PORT by name, metrics listen beyond loopback, Services target named ports', async (t) => {
  for (const [which, objects] of Object.entries(rendered)) {
    for (const d of deployments(objects).all) {
      for (const c of containersOf(d)) {
        const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]))
        t.equal(ports.get('http'), Number(setting(c, 'PORT')), `${which} ${c.name}: port http is PORT`)
        t.equal(ports.get('metrics'), Number(setting(c, 'METRICS_PORT')), `${which} ${c.name}: port metrics is METRICS_PORT`)
        t.equal(setting(c, 'METRICS_HOST'), '0.0.0.0', `${which} ${c.name}: metrics reachable by Prometheus`)
        t.equal(setting(c, 'HOST'), '0.0.0.0', `${which} ${c.name}: listens on every address`)
      }
    }
    for (const s of of(objects, 'Service')) {
      const pods = deployments(objects).all.filter((d) => matches(s.spec.selector, d.spec.template.metadata.labels))
      t.equal(pods.length, 1, `${which}: Service ${s.metadata.name} selects one Deployment's pods`)
      const names = new Set(pods.flatMap((d) => containersOf(d).flatMap((c) => (c.ports ?? []).map((p) => p.name))))
      for (const p of s.spec.ports) t.ok(names.has(p.targetPort), `${which}: Service ${s.metadata.name} port ${p.name} targets the container port ${p.targetPort}`)
    }
  }
})

t.test('every URL a container is given names a Service on a port it serves', async (t) => {
  let checked = 0
  for (const d of deployments(rendered.overlay).all) {
    for (const c of containersOf(d)) {
      for (const [name, value] of Object.entries(literal(c))) {
        if (!/^https?:\/\//.test(value)) continue
        const url = new URL(value)
        const service = named(rendered.overlay, 'Service', url.hostname)
        t.ok(service, `${c.name}: ${name} names the Service ${url.hostname}`)
        t.ok(service?.spec.ports.some((p: { port: number }) => p.port === Number(url.port || 80)), `${c.name}: ${name} → port ${url.port}, which ${url.hostname} serves`)
        checked++
      }
    }
  }
  t.ok(checked >= 2, `${checked} URLs checked (the admin upstream and the key set)`)
})

t.test('probes: readiness on /readyz, liveness and start-up on /healthz, on PORT; both paths answer without credentials', async (t) => {
  const status = async (server: Server, path: string) => {
    const port = await listen(server, 0, '127.0.0.1')
    try {
      return (await fetch(`http://127.0.0.1:${port}${path}`)).status
    } finally {
      await closeServer(server, 100)
    }
  }
  const unreachable = async () => { throw new Error('no credential checks expected') }
  const limits = { headersTimeoutMs: 10_000, maxHeaderBytes: 16_384, maxHeaders: 100 }
  const servers: Record<string, () => Server> = {
    'gateway/main.ts': () => createGatewayServer({ handle: unreachable, upgrade: unreachable, jwks: () => ({ keys: [] }), ready: async () => true, limits, draining: () => false, onRefused: () => {} }),
    'admin-api/main.ts': () => createAdminServer({ app: (_req, res) => void res.writeHead(500).end(), ready: async () => true, limits }),
  }
  const expected = { readinessProbe: '/readyz', livenessProbe: '/healthz', startupProbe: '/healthz' } as const
  for (const d of deployments(rendered.base).all) {
    for (const c of containersOf(d)) {
      for (const [probe, path] of Object.entries(expected)) {
        const get = c[probe]?.httpGet
        t.equal(get?.path, path, `${c.name}: ${probe} asks for ${path}`)
        t.equal(get?.port, 'http', `${c.name}: ${probe} on the http port (PORT)`)
        t.equal(await status(servers[entryFile(c)!]!(), path), 200, `${c.name}: ${entryFile(c)} answers ${path} with 200`)
      }
    }
  }
})

/** The numbers the shutdown depends on, from one gateway or admin API container. */
function termination(d: K8sObject) {
  const c = containersOf(d)[0]!
  const r = c.readinessProbe
  return {
    graceSec: d.spec.template.spec.terminationGracePeriodSeconds ?? 30,
    preStopSec: c.lifecycle?.preStop?.sleep?.seconds ?? 0,
    drainMs: Number(setting(c, 'KEYGATE_DRAIN_DELAY_MS')),
    shutdownGraceMs: Number(setting(c, 'KEYGATE_SHUTDOWN_GRACE_MS')),
    /** Longest time from the first failing answer to the kubelet marking the pod unready. */
    readinessNoticeMs: ((r.periodSeconds ?? 10) * (r.failureThreshold ?? 3) + (r.timeoutSeconds ?? 1)) * 1000,
  }
}

t.test('termination settings are consistent: readiness fails before the listener closes, and everything fits in the grace period', async (t) => {
  for (const [which, objects] of Object.entries(rendered)) {
    const { gateways, all } = deployments(objects)
    const g = termination(gateways[0]!)
    t.ok(g.preStopSec > 0, `${which}: the gateway's preStop sleeps ${g.preStopSec} s while endpoints are updated`)
    t.ok(g.readinessNoticeMs < g.drainMs, `${which}: the kubelet sees /readyz fail within ${g.readinessNoticeMs} ms, before the ${g.drainMs} ms drain delay ends`)
    const rolling = gateways[0]!.spec.strategy.rollingUpdate
    t.equal(rolling.maxUnavailable, 0, `${which}: a rolling update starts a new gateway before it stops an old one`)
    for (const d of all) {
      const s = termination(d)
      const totalMs = s.preStopSec * 1000 + s.drainMs + s.shutdownGraceMs
      t.ok(totalMs < s.graceSec * 1000, `${which} ${d.metadata.name}: preStop ${s.preStopSec} s + drain ${s.drainMs} ms + in-flight ${s.shutdownGraceMs} ms < terminationGracePeriodSeconds ${s.graceSec}`)
    }
  }
})

t.test('a gateway with the manifest\'s shutdown settings fails readiness before it stops accepting, and exits in time', async (t) => {
  const d = deployments(rendered.base).gateways[0]!
  const c = containersOf(d)[0]!
  const s = termination(d)
  const probe = c.readinessProbe
  const schema = await testSchema('k8s_drain')
  const dir = mkdtempSync(join(tmpdir(), 'keygate-k8s-'))
  const cm = named(rendered.base, 'ConfigMap', 'keygate-routes')!
  const routeFile = join(dir, basename(setting(c, 'KEYGATE_CONFIG')))
  writeFileSync(routeFile, cm.data![basename(routeFile)]!)
  const gateway = await spawnKeygate({
    ...literal(c),
    PORT: '0', HOST: '127.0.0.1', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1', KEYGATE_CONFIG: routeFile,
    DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema,
  })
  t.teardown(async () => {
    await gateway.stop('SIGKILL')
    await schema.drop()
    rmSync(dir, { recursive: true, force: true })
  })
  const get = (path: string) => fetch(`${gateway.url}${path}`, { signal: AbortSignal.timeout(probe.timeoutSeconds * 1000) }).then((r) => r.status, () => 0)
  t.equal(await get('/readyz'), 200, 'ready before SIGTERM')

  const start = Date.now()
  const exited = gateway.stop('SIGTERM')
  // The kubelet's readiness probe: every periodSeconds, failureThreshold failures in a row mark the pod unready.
  let failures = 0
  while (failures < probe.failureThreshold) {
    failures = (await get('/readyz')) === 200 ? 0 : failures + 1
    if (failures < probe.failureThreshold) await new Promise((r) => setTimeout(r, probe.periodSeconds * 1000))
  }
  const unreadyAfterMs = Date.now() - start
  t.ok(unreadyAfterMs < s.drainMs, `the kubelet would mark it unready after ${unreadyAfterMs} ms, within the ${s.drainMs} ms drain delay`)
  t.equal(await get('/healthz'), 200, 'still accepting connections (and alive for the liveness probe) at that moment')
  const code = await exited
  const exitedAfterMs = Date.now() - start
  t.equal(code, 0, 'it drained and exited cleanly')
  t.ok(exitedAfterMs >= s.drainMs, `it kept accepting for the whole drain delay (exited after ${exitedAfterMs} ms)`)
  t.ok(exitedAfterMs < (s.graceSec - s.preStopSec) * 1000, `it exited before the kubelet's SIGKILL (${s.graceSec - s.preStopSec} s after SIGTERM)`)
})

t.test('the route file is a ConfigMap mounted as a directory at KEYGATE_CONFIG, and it loads with the gateway\'s environment', async (t) => {
  const shipped = parse(read('config/keygate.yaml')) as { routes: Array<{ upstream: string }> }
  const adminRoutes = shipped.routes.filter((r) => r.upstream === 'admin')
  for (const [which, objects] of Object.entries(rendered)) {
    const gw = deployments(objects).gateways[0]!
    const c = containersOf(gw)[0]!
    const file = setting(c, 'KEYGATE_CONFIG')
    const mount = c.volumeMounts?.find((m) => m.mountPath === dirname(file))
    t.ok(mount, `${which}: ${dirname(file)} is a volume mount`)
    t.notOk(mount?.subPath, `${which}: mounted as a directory (a subPath mount never sees a ConfigMap update)`)
    t.equal(setting(c, 'KEYGATE_CONFIG_WATCH'), 'true', `${which}: the gateway watches the route file`)
    const volume = gw.spec.template.spec.volumes.find((v: { name: string }) => v.name === mount?.name)
    const cm = named(objects, 'ConfigMap', volume?.configMap?.name)
    t.ok(cm, `${which}: the volume is the ConfigMap ${volume?.configMap?.name}`)
    const text = cm?.data?.[basename(file)]
    t.ok(text, `${which}: the ConfigMap has the key ${basename(file)}`)
    const { config, problems } = parseFileConfig(text ?? '', file, literal(c))
    t.same(problems, [], `${which}: the route file loads with the gateway's environment`)
    const routes = parse(text ?? '') as { routes: unknown[] }
    t.same(routes.routes.filter((r) => (r as { upstream: string }).upstream === 'admin'), adminRoutes, `${which}: the admin API's routes are config/keygate.yaml's`)
    for (const [name, u] of Object.entries(config?.upstreams ?? {})) {
      for (const url of ([] as string[]).concat(u.url)) t.notOk(url.startsWith('internal:'), `${which}: upstream ${name} is ${url}, not in-process`)
    }
  }
})

t.test('the admin API is reachable only from the gateways', async (t) => {
  for (const [which, objects] of Object.entries(rendered)) {
    const { gateways, adminApis } = deployments(objects)
    const adminLabels = adminApis[0]!.spec.template.metadata.labels
    const gatewayLabels = gateways[0]!.spec.template.metadata.labels
    const policies = of(objects, 'NetworkPolicy').filter((p) => matches(p.spec.podSelector.matchLabels, adminLabels))
    t.equal(policies.length, 1, `${which}: one NetworkPolicy selects the admin API's pods`)
    const p = policies[0]!
    t.ok(p.spec.policyTypes.includes('Ingress'), `${which}: it restricts ingress`)
    const toHttp = p.spec.ingress.filter((rule: { ports?: Array<{ port: string | number }> }) => !rule.ports || rule.ports.some((x) => x.port === 'http' || x.port === 8000))
    t.equal(toHttp.length, 1, `${which}: one rule opens the API port`)
    const from = toHttp[0]?.from ?? []
    t.equal(from.length, 1, `${which}: from one source`)
    t.notOk(from[0]?.namespaceSelector || from[0]?.ipBlock, `${which}: pods of this namespace only`)
    t.ok(from[0]?.podSelector && matches(from[0].podSelector.matchLabels, gatewayLabels) && !matches(from[0].podSelector.matchLabels, adminLabels), `${which}: the gateways' pods only`)
    const adminServices = of(objects, 'Service').filter((s) => matches(s.spec.selector, adminLabels)).map((s) => s.metadata.name)
    const backends = of(objects, 'Ingress').flatMap((i) => i.spec.rules.flatMap((r: { http: { paths: Array<{ backend: { service: { name: string } } }> } }) => r.http.paths.map((x) => x.backend.service.name)))
    t.notOk(backends.some((b) => adminServices.includes(b)), `${which}: no Ingress sends to the admin API's Service`)
  }
})

t.test('the autoscaler, the disruption budget, the Ingress and the ServiceMonitor point at the gateways', async (t) => {
  const objects = rendered.overlay
  const gw = deployments(objects).gateways[0]!
  const labels = gw.spec.template.metadata.labels
  const service = of(objects, 'Service').find((s) => matches(s.spec.selector, labels))!
  const hpa = of(objects, 'HorizontalPodAutoscaler')[0]!
  t.same([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['Deployment', gw.metadata.name], 'the HPA scales the gateway Deployment')
  t.same(hpa.spec.metrics.map((m: { resource?: { name: string } }) => m.resource?.name), ['cpu'], 'on CPU')
  t.equal(hpa.spec.minReplicas, gw.spec.replicas, 'its floor is the Deployment\'s replicas, so an apply does not scale below it')
  const c = containersOf(gw)[0]!
  t.ok(c.resources?.requests?.cpu && c.resources?.limits?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, 'the gateway has CPU and memory requests and limits (the HPA needs the CPU request)')
  const pdb = of(objects, 'PodDisruptionBudget')[0]!
  t.ok(matches(pdb.spec.selector.matchLabels, labels), 'the PDB selects the gateway pods')
  t.ok((pdb.spec.maxUnavailable ?? gw.spec.replicas - pdb.spec.minAvailable) < gw.spec.replicas, 'it keeps at least one gateway up')
  const paths = of(objects, 'Ingress').flatMap((i) => i.spec.rules.flatMap((r: { http: { paths: unknown[] } }) => r.http.paths)) as Array<{ backend: { service: { name: string; port: { name?: string; number?: number } } } }>
  t.ok(paths.length, 'the Ingress has paths')
  for (const p of paths) {
    t.equal(p.backend.service.name, service.metadata.name, 'the Ingress sends to the gateway Service')
    t.ok(service.spec.ports.some((x: { name: string; port: number }) => x.name === p.backend.service.port.name || x.port === p.backend.service.port.number), 'on a port it has')
  }
  const sm = of(objects, 'ServiceMonitor')[0]!
  t.ok(matches(sm.spec.selector.matchLabels, service.metadata.labels), 'the ServiceMonitor selects the gateway Service')
  t.ok(sm.spec.endpoints.every((e: { port: string }) => service.spec.ports.some((x: { name: string; targetPort: string }) => x.name === e.port && x.targetPort === 'metrics')), 'and scrapes its metrics port by name')
})

t.test('the gateway\'s memory comes from the bench: the request covers the measured RSS, the limit a full credential cache on top', async (t) => {
  const bench = read('bench/results/gateway-2026-11-25.md')
  // Rows of one Keygate process on PostgreSQL: not the embedded database, not KEYGATE_WORKERS.
  const rss = bench.split('\n').filter((l) => l.startsWith('| Keygate') && !/WORKERS|embedded/.test(l)).map((l) => Number(l.split('|').at(-2)!.trim()))
  t.ok(rss.length >= 3, `${rss.length} single-process rows (RSS ${rss.join(', ')} MiB)`)
  const mebibytes = (q: string) => { const [, n, unit] = /^(\d+)(Mi|Gi)$/.exec(q) ?? []; return Number(n) * (unit === 'Gi' ? 1024 : 1) }
  const c = containersOf(deployments(rendered.base).gateways[0]!)[0]!
  t.ok(mebibytes(c.resources.requests.memory) >= Math.max(...rss), `request ${c.resources.requests.memory} ≥ the largest measured RSS`)
  // The credential cache at its default bound adds about 125 MiB (README, Sizing).
  t.ok(mebibytes(c.resources.limits.memory) >= Math.max(...rss) + 125, `limit ${c.resources.limits.memory} ≥ that plus a full credential cache`)
  t.equal(setting(c, 'KEYGATE_WORKERS'), '1', 'one process per pod: the pod\'s CPU is one event loop\'s')
})

t.test('the ingress-nginx forward-auth example asks the gateway Service\'s decision endpoint about a route the overlay serves', async (t) => {
  const objects = render('deploy/kubernetes/forward-auth')
  for (const o of objects) t.same(kubernetesSchemaProblems(o), [], `${o.kind} ${o.metadata?.name}`)
  const ingress = of(objects, 'Ingress')[0]!
  t.ok(ingress, 'an Ingress')
  const a = (ingress.metadata as unknown as { annotations: Record<string, string> }).annotations
  const url = new URL(a['nginx.ingress.kubernetes.io/auth-url']!)
  const service = named(rendered.overlay, 'Service', 'keygate-gateway')!
  const namespace = (service.metadata as { namespace?: string }).namespace
  t.equal(url.hostname, `${service.metadata.name}.${namespace}.svc.cluster.local`, 'the gateway Service of the example overlay, by its cluster name')
  t.ok(service.spec.ports.some((p: { name: string; port: number }) => p.name === 'http' && p.port === Number(url.port)), 'on its http port')
  t.equal(url.pathname, '/_keygate/decide')
  t.ok(a['nginx.ingress.kubernetes.io/auth-response-headers']!.split(',').map((h) => h.trim().toLowerCase()).includes(defaultOf('KEYGATE_IDENTITY_HEADER')), 'the identity header is copied onto the request')
  t.match(a['nginx.ingress.kubernetes.io/auth-cache-key'], /\$request_method.*\$host.*\$request_uri.*\$http_authorization/, 'decisions are kept per method, host, URI and credential')
  t.equal(a['nginx.ingress.kubernetes.io/auth-cache-duration'], '200 1s', 'only allowing answers are kept, for at most the default decision cache time')
  const gw = containersOf(deployments(rendered.overlay).gateways[0]!)[0]!
  t.not(setting(gw, 'KEYGATE_TRUSTED_PROXIES'), '', 'the gateways trust the controller (KEYGATE_TRUSTED_PROXIES is set)')
  const routes = parse(read('deploy/kubernetes/overlays/example/routes/keygate.yaml')) as { routes: Array<{ prefix: string; upstream: string }> }
  for (const rule of ingress.spec.rules) {
    for (const p of rule.http.paths) t.ok(routes.routes.some((r) => r.prefix === p.path && r.upstream === p.backend.service.name), `${p.path} is a route of the overlay's route file, to ${p.backend.service.name}`)
  }
})
