import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { Pool } from 'undici'
import { ERROR_CODES, isErrorCode } from '../../core/error-codes.ts'
import { caseRng, FUZZ_ROUTES, fuzzRaw, fuzzRequest, TOO_LARGE, type FuzzRequest, type RawCase, type Secrets } from '../helpers/fuzz-inputs.ts'
import { BOOTSTRAP } from '../helpers/keygate.ts'
import { testSchema } from '../helpers/postgres.ts'
import { spawnKeygate } from '../helpers/process.ts'
import { leakedSecrets } from '../helpers/raw-http.ts'
import { close, echoRouteFile, listen } from '../helpers/upstreams.ts'

/**
 * A real gateway process on real sockets, fed at least 100,000 random and mutated `Authorization` headers and
 * request paths (undici, keep-alive), then a few thousand raw-socket requests carrying bytes no HTTP client
 * sends. Every input comes from one seed: `FUZZ_SEED=<seed>` repeats a run, `FUZZ_ONLY=<i>,<j>` sends only those
 * cases of it (case numbers of the raw phase start at RAW_BASE), `FUZZ_COUNT` and `FUZZ_RAW` change the counts.
 */
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 12)) >>> 0
const COUNT = Number(process.env.FUZZ_COUNT ?? 100_000)
const RAW_COUNT = Number(process.env.FUZZ_RAW ?? 3_000)
const ONLY = process.env.FUZZ_ONLY?.split(',').map(Number)
const RAW_BASE = 1 << 30
const CONCURRENCY = 48
const RAW_CONCURRENCY = 32
const WARMUP = 10_000
const RSS_BOUND_MIB = 64
/** Between the two measured samples, RSS is also read every this many requests (for the peak). */
const RSS_EVERY = 2_500
const EXAMPLES = Number(process.env.FUZZ_EXAMPLES ?? 25)

interface Result { outcome: string; violation?: string }

/** The outcome of an answer, and what (if anything) breaks the error contract: problem+json, registry code, its status. */
function classify(status: number, contentType: string | undefined, body: string): Result {
  if (status < 400) return { outcome: String(status) }
  // Node's own parser answer before the gateway had one: a status line and no body.
  if (body === '' && contentType === undefined) return { outcome: `${status} bare` }
  if (!/^application\/problem\+json\b/i.test(contentType ?? '')) return { outcome: `${status} ?`, violation: `content-type ${contentType ?? 'none'}: ${body.slice(0, 200)}` }
  let problem: { code?: unknown; status?: unknown }
  try {
    problem = JSON.parse(body) as typeof problem
  } catch {
    return { outcome: `${status} ?`, violation: `body is not JSON: ${body.slice(0, 200)}` }
  }
  const code = String(problem.code)
  if (!isErrorCode(code)) return { outcome: `${status} ${code}`, violation: 'code not in core/error-codes.ts' }
  if (ERROR_CODES[code].status !== status || problem.status !== status) return { outcome: `${status} ${code}`, violation: `the registry gives ${code} status ${ERROR_CODES[code].status}` }
  return { outcome: `${status} ${code}` }
}

/** The first response of a raw exchange. */
function classifyRaw(text: string | null): Result {
  if (text === null) return { outcome: 'no answer (timeout)' }
  if (text === '') return { outcome: 'no answer (closed)' }
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
  if (!m) return { outcome: 'not HTTP', violation: JSON.stringify(text.slice(0, 200)) }
  const end = text.indexOf('\r\n\r\n')
  const head = end === -1 ? text : text.slice(0, end)
  const rest = end === -1 ? '' : text.slice(end + 4)
  const contentType = /^content-type:[ \t]*(.*?)[ \t]*$/im.exec(head)?.[1]
  const length = /^content-length:[ \t]*(\d+)/im.exec(head)?.[1]
  return classify(Number(m[1]), contentType, length === undefined ? rest : rest.slice(0, Number(length)))
}

/** Writes `bytes` on a fresh connection; resolves with everything read until the server closed it, or null. */
function exchange(port: number, bytes: Buffer, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let settled = false
    const finish = (value: string | null) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(value)
    }
    const timer = setTimeout(() => finish(null), timeoutMs)
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('close', () => finish(Buffer.concat(chunks).toString('latin1')))
    // A reset after the answer (unread bytes of a refused request) is how such a connection ends.
    socket.on('error', () => {})
  })
}

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Preloaded into the gateway (NODE_OPTIONS): a full garbage collection on SIGUSR2, so that RSS is compared at
 * the same point of V8's cycle. Read unprepared, it rises by ~1 KiB a request until a major collection (60 to
 * 90 MiB later) and falls back, wherever the run happens to stop.
 */
const GC_READY = 'keygate-fuzz: full collection on SIGUSR2'
const GC_DONE = 'keygate-fuzz: full collection done'
const GC_PRELOAD = `import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
process.on('SIGUSR2', () => { gc(); gc(); process.stderr.write(${JSON.stringify(GC_DONE + '\n')}) })
process.stderr.write(${JSON.stringify(GC_READY + '\n')})
`

/**
 * A log line is judged by its fields (a fuzzed path in an access line may spell "fatal"); anything else the
 * process writes (Node's own report of an uncaught exception, a stack) by its words.
 */
function alarming(line: string): boolean {
  if (!/uncaught|unhandled|fatal|"level":"error"|^\s+at /i.test(line)) return false
  if (!line.startsWith('{')) return true
  try {
    const entry = JSON.parse(line) as { level?: unknown; msg?: unknown }
    return entry.level === 'error' || entry.level === 'fatal' || /uncaught|unhandled/i.test(String(entry.msg))
  } catch {
    return true
  }
}

/**
 * Reads the gateway's output as it arrives and empties the array spawnKeygate fills (100k access lines would
 * otherwise pile up in the test process): lines naming an uncaught exception, a fatal or error level are kept,
 * and so is any occurrence of the real credentials.
 */
class OutputWatch {
  private partial = ''
  readonly alarms: string[] = []
  readonly leaked = new Set<string>()
  lines = 0
  collections = 0
  constructor(private readonly output: string[], private readonly secrets: readonly string[]) {}
  drain(final = false): void {
    const text = this.partial + this.output.splice(0).join('')
    const lines = text.split('\n')
    this.partial = final ? '' : lines.pop()!
    this.lines += lines.length
    for (const line of lines) {
      if (line.includes(GC_DONE)) this.collections++
      if (alarming(line) && this.alarms.length < 50) this.alarms.push(line.slice(0, 2000))
    }
    for (const s of leakedSecrets(lines, this.secrets)) this.leaked.add(s)
  }
}

class Tally {
  readonly outcomes = new Map<string, number>()
  readonly kinds = new Map<string, number>()
  readonly unexpected: string[] = []
  readonly violations: string[] = []
  unexpectedCount = 0
  violationCount = 0
  serverErrors = 0
  validTotal = 0
  validOk = 0
  forwarded = 0
  constructor(private readonly secrets: Secrets) {}
  /** An input as a reader can repeat it, with the real credentials named instead of shown. */
  describe(text: string): string {
    return text.replaceAll(this.secrets.key, '<KEY>').replaceAll(this.secrets.jwt, '<JWT>')
  }
  record(index: number, kind: string, input: string, allowed: readonly string[], result: Result, toUpstream = false): void {
    const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)
    bump(this.outcomes, result.outcome)
    bump(this.kinds, kind)
    const status = Number(result.outcome.slice(0, 3))
    if (status >= 500) this.serverErrors++
    const line = () => this.describe(`#${index} seed ${SEED} ${kind}: ${input} → ${result.outcome}${result.violation ? ` (${result.violation})` : ''}; allowed ${allowed.join(' | ')}`)
    if (result.violation && ++this.violationCount <= EXAMPLES) this.violations.push(line())
    if (!allowed.includes(result.outcome) && ++this.unexpectedCount <= EXAMPLES) this.unexpected.push(line())
    if (allowed.length === 1 && allowed[0] === '200') {
      this.validTotal++
      if (result.outcome === '200') this.validOk++
    }
    if (toUpstream && result.outcome === '200') this.forwarded++
  }
}

const describeRequest = (c: FuzzRequest) =>
  `${c.method} ${JSON.stringify(c.path.length > 300 ? `${c.path.slice(0, 300)}…(${c.path.length})` : c.path)} authorization=${JSON.stringify(c.authorization.map((a) => (a.length > 300 ? `${a.slice(0, 300)}…(${a.length})` : a)))}${c.body === undefined ? '' : ` body=${c.body.length} bytes`}`

function table(rows: Iterable<[string, number]>): string {
  return [...rows].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, v]) => `  ${k.padEnd(32)} ${String(v).padStart(7)}`).join('\n')
}

// A fixed number of cases, bound by CPU: about a minute on an idle two-core machine, more while other test files
// share the cores. The file's own limit is therefore longer than the suite's 120 s.
t.setTimeout(360_000)

/**
 * The answers a request may get: its input's own set, and also 431 HEADERS_TOO_LARGE when a long path and a long
 * Authorization value together come near the gateway's limit on the request line plus headers (16 KiB by
 * default; the client adds its own few headers), whatever each would have got alone.
 */
const MAX_HEADER_BYTES = 16_384
function mayBeTooLarge(c: FuzzRequest): readonly string[] {
  const bytes = Buffer.byteLength(c.path) + c.authorization.reduce((n, v) => n + Buffer.byteLength(v) + 16, 0)
  return bytes > MAX_HEADER_BYTES - 512 && !c.allowed.includes(TOO_LARGE[0]!) ? [...c.allowed, ...TOO_LARGE] : c.allowed
}

t.test('the gateway under fuzzed Authorization headers and request paths', async (t) => {
  const testStarted = performance.now()
  t.comment(`seed ${SEED} (FUZZ_SEED=${SEED} repeats this run)`)

  // The upstream: answers 200 and counts, keeping nothing.
  let upstreamHits = 0
  let upstreamSawCredential = 0
  const upstream = createServer((req, res) => {
    upstreamHits++
    if (req.headers.authorization !== undefined) upstreamSawCredential++
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' })
      res.end('ok')
    })
  })
  const origin = await listen(upstream)
  const preloadDir = mkdtempSync(join(tmpdir(), 'keygate-fuzz-'))
  const preload = join(preloadDir, 'gc-on-signal.mjs')
  writeFileSync(preload, GC_PRELOAD)
  const db = await testSchema('fuzz')
  const kp = await spawnKeygate({
    DATABASE_URL: db.url,
    DATABASE_SCHEMA: db.schema,
    KEYGATE_CONFIG: echoRouteFile(origin, FUZZ_ROUTES),
    KEYGATE_DEMOS: 'false',
    KEYGATE_CONFIG_WATCH: 'false',
    // A raw request the parser still waits on is answered 408 soon, not after the default 10 s.
    KEYGATE_HEADERS_TIMEOUT_MS: '2000',
    // The valid key stays cached for the whole run: on a loaded machine the run outlasts the default 60 s, and an
    // uncached lookup from this address would then be refused (429 KEY_LOOKUPS_LIMITED) after the fuzzed unknown keys.
    KEYGATE_CACHE_TTL_MS: '3600000',
    NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${pathToFileURL(preload).href}`].filter(Boolean).join(' '),
  }).catch(async (err: unknown) => {
    await close(upstream)
    await db.drop()
    rmSync(preloadDir, { recursive: true, force: true })
    throw err
  })
  const port = Number(new URL(kp.url).port)
  const pool = new Pool(kp.url, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 })
  let stopped = false
  t.teardown(async () => {
    if (!pool.closed) await pool.close()
    if (!stopped) await kp.stop()
    await close(upstream)
    await db.drop()
    rmSync(preloadDir, { recursive: true, force: true })
  })

  const post = async (path: string, body: unknown, token?: string) => {
    const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> }
  }
  const login = await post('/api/v1/auth/login', BOOTSTRAP)
  t.equal(login.status, 200, 'a real access token comes from the login route')
  const jwt = String(login.json.access_token)
  const issued = await post('/api/v1/auth/api-key', { name: 'fuzz' }, jwt)
  t.ok(issued.status < 300 && typeof issued.json.api_key === 'string', 'a real API key comes from the admin API')
  const secrets: Secrets = { key: String(issued.json.api_key), jwt }
  const refreshToken = String(login.json.refresh_token)
  const watch = new OutputWatch(kp.output, [secrets.key, secrets.jwt, refreshToken])
  const tally = new Tally(secrets)
  const rssStart = rssKiB(kp.pid)
  let gcReady = false
  for (let waited = 0; !gcReady && waited < 3000; waited += 20) {
    gcReady = kp.output.some((chunk) => chunk.includes(GC_READY))
    if (!gcReady) await sleep(20)
  }
  /** RSS (KiB) right after a full collection in the gateway; null when it cannot be asked for one. */
  const rssCollected = async (): Promise<number | null> => {
    if (!gcReady) return null
    const before = watch.collections
    process.kill(kp.pid, 'SIGUSR2')
    for (let waited = 0; watch.collections === before; waited += 10) {
      if (waited > 5000) return null
      await sleep(10)
      watch.drain()
    }
    // Freed pages go back to the system as the concurrent sweep finishes.
    await sleep(300)
    return rssKiB(kp.pid)
  }
  /** Raw RSS (KiB) every RSS_EVERY requests from the warm-up on. */
  const rss: number[] = []
  let rssWarm: number | null = null

  // Phase 1: undici, keep-alive, CONCURRENCY requests in flight.
  const indices = ONLY ? ONLY.filter((i) => i < RAW_BASE) : null
  const total = indices ? indices.length : COUNT
  let next = 0
  let done = 0
  const started = performance.now()
  const send = async (c: FuzzRequest): Promise<Result> => {
    const headers: string[] = []
    for (const value of c.authorization) headers.push('authorization', value)
    if (c.body !== undefined) headers.push('content-type', 'application/octet-stream')
    try {
      const res = await pool.request({ method: c.method, path: c.path, headers, body: c.body })
      const body = await res.body.text()
      const contentType = res.headers['content-type']
      return classify(res.statusCode, Array.isArray(contentType) ? contentType.join(', ') : contentType, body)
    } catch (err) {
      const e = err as Error & { code?: string }
      return { outcome: `client error ${e.code ?? e.name}`, violation: e.message }
    }
  }
  const worker = async () => {
    for (;;) {
      const n = next++
      if (n >= total) return
      const index = indices ? indices[n]! : n
      const c = fuzzRequest(caseRng(SEED, index), secrets)
      tally.record(index, c.kind, describeRequest(c), mayBeTooLarge(c), await send(c), c.toUpstream)
      done++
      if (done >= WARMUP && done % RSS_EVERY === 0) rss.push(rssKiB(kp.pid))
      if (done === WARMUP) rssWarm = await rssCollected()
      if (done % 5000 === 0) watch.drain()
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const undiciMs = performance.now() - started
  const forwardedToUpstream = upstreamHits
  watch.drain()

  // Phase 2: raw sockets, one connection per request.
  const rawIndices = ONLY ? ONLY.filter((i) => i >= RAW_BASE) : [...Array(RAW_COUNT).keys()].map((i) => RAW_BASE + i)
  let rawNext = 0
  const rawStarted = performance.now()
  const rawWorker = async () => {
    for (;;) {
      const n = rawNext++
      if (n >= rawIndices.length) return
      const index = rawIndices[n]!
      const c: RawCase = fuzzRaw(caseRng(SEED, index), secrets)
      tally.record(index, c.kind, c.label, c.allowed, classifyRaw(await exchange(port, c.bytes, 5000)))
    }
  }
  await Promise.all(Array.from({ length: RAW_CONCURRENCY }, rawWorker))
  const rawMs = performance.now() - rawStarted

  // The end: still alive, still answering, memory where it was.
  let alive = true
  try {
    process.kill(kp.pid, 0)
  } catch {
    alive = false
  }
  const health = alive ? await pool.request({ method: 'GET', path: '/healthz' }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }), (err: Error) => ({ status: 0, body: err.message })) : { status: 0, body: 'process gone' }
  const rssEnd = alive ? rssKiB(kp.pid) : undefined
  const rssEndCollected = alive ? await rssCollected() : null
  await pool.close()
  stopped = true
  const exitCode = await kp.stop()
  watch.drain(true)

  const sent = tally.kinds
  const undiciTotal = [...sent].filter(([k]) => !k.startsWith('raw-')).reduce((s, [, v]) => s + v, 0)
  const rawTotal = [...sent].filter(([k]) => k.startsWith('raw-')).reduce((s, [, v]) => s + v, 0)
  t.comment(`inputs by kind (${undiciTotal} over undici in ${(undiciMs / 1000).toFixed(1)} s = ${Math.round(undiciTotal / (undiciMs / 1000))}/s, ${rawTotal} over raw sockets in ${(rawMs / 1000).toFixed(1)} s):\n${table(sent)}`)
  t.comment(`status → code:\n${table(tally.outcomes)}`)
  const warm = rss[0]
  if (warm !== undefined && rssEnd !== undefined) {
    t.comment(`gateway RSS as read: start ${mib(rssStart)}, after warm-up (${WARMUP / 1000}k requests) ${mib(warm)}, peak ${mib(Math.max(...rss, rssEnd))}, end ${mib(rssEnd)}; growth ${mib(rssEnd - warm)}`)
  }
  if (rssWarm !== null && rssEndCollected !== null) {
    t.comment(`gateway RSS after a full collection: after warm-up ${mib(rssWarm)}, end ${mib(rssEndCollected)}; growth ${mib(rssEndCollected - rssWarm)}`)
  }
  t.comment(`gateway output: ${watch.lines} lines; wall time ${((performance.now() - started) / 1000).toFixed(1)} s for both phases, ${((performance.now() - testStarted) / 1000).toFixed(1)} s with setup and shutdown`)

  t.test('no input crashes the gateway', async (t) => {
    t.ok(alive, 'the process is still running after every input')
    t.equal(health.status, 200, 'and answers /healthz')
    t.same(watch.alarms, [], 'its output has no uncaught exception, fatal or error line')
    t.equal(exitCode, 0, 'and it stops cleanly when told to')
  })

  t.test('every answer is one the README documents for its input', async (t) => {
    t.equal(tally.serverErrors, 0, 'no answer is a 5xx (the upstream is healthy)')
    t.equal(tally.unexpectedCount, 0, `every status and code is in its input's documented set (${tally.unexpectedCount} not)`)
    t.same(tally.unexpected, [], 'first inputs with an undocumented answer')
    t.equal(tally.violationCount, 0, 'every error is application/problem+json with a code from core/error-codes.ts and that code\'s status')
    t.same(tally.violations, [], 'first answers that break the error contract')
    t.ok(tally.validTotal >= COUNT / 20 || indices !== null, `a share of the inputs is valid (${tally.validTotal})`)
    t.equal(tally.validOk, tally.validTotal, 'every valid request went through with 200')
  })

  t.test('nothing a client sent reaches the upstream unless admitted, and no credential at all', async (t) => {
    t.equal(forwardedToUpstream, tally.forwarded, 'the upstream saw exactly the requests the gateway answered 200 for it')
    t.equal(upstreamSawCredential, 0, 'no Authorization header reached the upstream')
  })

  t.test('the gateway output holds no credential', async (t) => {
    t.same([...watch.leaked], [], 'neither the API key nor the access or refresh token')
  })

  const partial = indices !== null || COUNT <= WARMUP
  t.test('memory stays flat', { skip: partial && 'a partial run (FUZZ_ONLY, or no more requests than the warm-up)' }, async (t) => {
    t.ok(gcReady, 'the gateway can be asked for a full garbage collection (the preload ran)')
    t.not(rssWarm, null, 'RSS after warm-up was measured')
    t.not(rssEndCollected, null, 'RSS at the end was measured')
    if (rssWarm === null || rssEndCollected === null) return
    t.ok(rssEndCollected - rssWarm < RSS_BOUND_MIB * 1024, `RSS after a full collection grew ${mib(rssEndCollected - rssWarm)} from warm-up to the end, under ${RSS_BOUND_MIB} MiB`)
  })
})
