import { rmSync } from 'node:fs'
import type { Clock } from '../../core/clock.ts'
import { startKeygate, type RunningKeygate } from '../../gateway/main.ts'
import { openApiValidator } from './openapi-validator.ts'
import { freshPgliteDir } from './pglite-template.ts'
import { testSchema, type TestSchema } from './postgres.ts'

export interface TestKeygate extends RunningKeygate {
  /** Every log line written, for assertions that no secret was logged. */
  readonly logs: string[]
}

export const BOOTSTRAP = { username: 'alice', password: 'correct horse battery staple' }
export const BOOTSTRAP_EMAIL = 'alice@example.com'

/** Settings every test instance shares: free ports, quiet logs, a cheaper (still real) scrypt. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: 'debug',
    KEYGATE_PASSWORD_HASH_LOG_N: '14',
    KEYGATE_BOOTSTRAP_USERNAME: BOOTSTRAP.username,
    KEYGATE_BOOTSTRAP_EMAIL: BOOTSTRAP_EMAIL,
    KEYGATE_BOOTSTRAP_PASSWORD: BOOTSTRAP.password,
    KEYGATE_SHUTDOWN_GRACE_MS: '2000',
    ...extra,
  }
}

/**
 * A Keygate on the embedded database in a fresh temporary directory (holding a copy of an initdb'd cluster:
 * pglite-template.ts), or in `dataDir` as it is.
 */
export async function keygateOnPglite(extra: Record<string, string> = {}, dataDir?: string): Promise<TestKeygate & { dataDir: string; removeData(): void }> {
  const dir = dataDir ?? (await freshPgliteDir())
  const logs: string[] = []
  const kg = await startKeygate(testEnv({ KEYGATE_DATA_DIR: dir, ...extra }), { write: (l) => logs.push(l) })
  return Object.assign(kg, { logs, dataDir: dir, removeData: () => rmSync(dir, { recursive: true, force: true }) })
}

/** A Keygate on the local PostgreSQL server, in a schema of its own (`schema` to share one between instances). */
export async function keygateOnPostgres(label: string, extra: Record<string, string> = {}, shared?: TestSchema, clock?: Clock) {
  const db = shared ?? (await testSchema(label))
  const logs: string[] = []
  const kg = await startKeygate(testEnv({ DATABASE_URL: db.url, DATABASE_SCHEMA: db.schema, ...extra }), { write: (l) => logs.push(l), clock })
  return Object.assign(kg, { logs, db })
}

const checkResponse = openApiValidator()

/** JSON request helper on real sockets; every admin API response is checked against the OpenAPI document. */
export async function call(base: string, method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(base + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  let json: any
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  const problems = checkResponse(method, path, res.status, res.headers.get('content-type') ?? '', json)
  if (problems.length) throw new Error(`response does not match the OpenAPI document: ${problems.join('; ')}`)
  return { status: res.status, headers: res.headers, json, text }
}

/** Asks `base` for a protected route with `token` until it is refused (at most `ms`); the answer and how long it took. */
export async function refusedWithin(base: string, token: string, ms: number): Promise<{ status: number; code: string; afterMs: number }> {
  const start = performance.now()
  for (;;) {
    const res = await call(base, 'GET', '/api/v1/conversations', { token })
    const afterMs = performance.now() - start
    if (res.status !== 200 || afterMs > ms) return { status: res.status, code: res.json?.code as string, afterMs }
    await new Promise((r) => setTimeout(r, 5))
  }
}
