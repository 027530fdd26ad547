import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../core/errors.ts'
import { dirname } from 'node:path'
import { routeTableProblems } from './route-checks.ts'
import { readUpstreamTls } from './upstream-tls.ts'
import { envSchema, fileSchema, type EnvConfig, type FileConfig } from './schema.ts'

export interface KeygateConfig { readonly env: EnvConfig; readonly file: FileConfig; readonly filePath: string }

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/** `routes[2].timeout_ms (route "billing")`: a place in the route file, with the name of the route it is in. */
function place(path: readonly PropertyKey[], values?: unknown): string {
  const text = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '')
  const routes = (values as { routes?: unknown } | undefined)?.routes
  const name = path[0] === 'routes' && typeof path[1] === 'number' && Array.isArray(routes) ? (routes[path[1]] as { name?: unknown } | undefined)?.name : undefined
  return typeof name === 'string' && name.length <= 63 ? `${text} (route "${name}")` : text
}

/**
 * One line per issue. `values` (the route file's) adds the route's name and, for a route's own field, the value
 * that was refused: never for the environment or an upstream, whose values may hold credentials.
 */
function describe(issues: readonly z.core.$ZodIssue[], where: string, values?: unknown): string[] {
  return issues.map((i) => {
    const path = place(i.path, values)
    // The value as written (not as coerced: "5min", not NaN), for a route's field or an item of its list.
    const input = i.path.reduce<unknown>((v, p) => (v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined), values)
    const shown = values !== undefined && i.path[0] === 'routes' && (i.path.length === 3 || i.path.length === 4) && ['string', 'number', 'boolean'].includes(typeof input) && String(input).length <= 80
    return `${where}${path ? ` ${path}` : ''}: ${i.message}${shown ? `, got ${JSON.stringify(input)}` : ''}`
  })
}

/** Replaces `${VAR}` and `${VAR:-default}` in a value of the file with environment values; a missing VAR without default is a problem. */
function interpolate(text: string, env: NodeJS.ProcessEnv, problems: string[], where: string): string {
  return text.replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    if (fallback !== undefined) return fallback
    problems.push(`${where}: \${${name}} is used but the environment variable ${name} is not set`)
    return ''
  })
}

/** Validates the route file's text; every problem names the file, the path inside it and what was expected. */
export function parseFileConfig(text: string, file: string, env: NodeJS.ProcessEnv): { config?: FileConfig; problems: string[] } {
  const problems: string[] = []
  const doc = parseDocument(text)
  for (const e of doc.errors) problems.push(`${file}: ${e.message}`)
  if (problems.length) return { problems }
  // Interpolate values only, after parsing: comments and keys are never touched.
  // `path` is built as `describe` builds it, so this problem names the place inside the file like the others.
  const walk = (v: unknown, path: string): unknown =>
    typeof v === 'string' ? interpolate(v, env, problems, path ? `${file} ${path}` : file)
      : Array.isArray(v) ? v.map((x, i) => walk(x, `${path}[${i}]`))
        : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path ? `${path}.${k}` : k)]))
          : v
  const values = walk(doc.toJS(), '')
  if (problems.length) return { problems }
  const parsed = fileSchema.safeParse(values)
  if (!parsed.success) return { problems: describe(parsed.error.issues, file, values) }
  const config = parsed.data
  const where = (i: number, field: string) => `${file} ${place(['routes', i, field], values)}`
  const names = new Set<string>()
  config.routes.forEach((r, i) => {
    if (names.has(r.name)) problems.push(`${where(i, 'name')}: duplicate route name "${r.name}"`)
    names.add(r.name)
    if (!Object.hasOwn(config.upstreams, r.upstream)) {
      problems.push(`${where(i, 'upstream')}: "${r.upstream}" is not one of the upstreams (${Object.keys(config.upstreams).join(', ')})`)
    }
  })
  problems.push(...routeTableProblems(config.routes, where))
  // An upstream's TLS files (ca_file, cert_file, key_file): readable, PEM, the key matching its certificate.
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    for (const problem of readUpstreamTls(upstream, dirname(file)).problems) problems.push(`${file} upstreams.${name}.${problem}`)
  }
  return problems.length ? { problems } : { config, problems }
}

/** Environment variables set to the empty string count as unset. */
export function withoutEmpty(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
}

/** The environment's settings and every problem with them (the part of `loadConfig` that needs no file). */
function parseEnv(env: NodeJS.ProcessEnv): { env?: EnvConfig; problems: string[] } {
  const problems: string[] = []
  const parsedEnv = envSchema.safeParse(env)
  if (!parsedEnv.success) problems.push(...describe(parsedEnv.error.issues, 'environment'))
  const e = parsedEnv.success ? parsedEnv.data : undefined
  // Read from `env`, not the parsed result, so this problem is listed even when another setting is invalid.
  const bootstrap = [env.KEYGATE_BOOTSTRAP_USERNAME, env.KEYGATE_BOOTSTRAP_EMAIL, env.KEYGATE_BOOTSTRAP_PASSWORD].map((v) => v !== undefined)
  if (bootstrap.some(Boolean) && !bootstrap.every(Boolean)) {
    problems.push('environment: KEYGATE_BOOTSTRAP_USERNAME, KEYGATE_BOOTSTRAP_EMAIL and KEYGATE_BOOTSTRAP_PASSWORD go together')
  }
  if ((env.KEYGATE_SMTP_URL === undefined) !== (env.KEYGATE_MAIL_FROM === undefined)) {
    problems.push('environment: KEYGATE_SMTP_URL and KEYGATE_MAIL_FROM go together')
  }
  if ((env.KEYGATE_TLS_CERT_FILE === undefined) !== (env.KEYGATE_TLS_KEY_FILE === undefined)) {
    problems.push('environment: KEYGATE_TLS_CERT_FILE and KEYGATE_TLS_KEY_FILE go together')
  }
  if (e && e.KEYGATE_WORKERS !== 1 && !e.DATABASE_URL) {
    problems.push('environment: KEYGATE_WORKERS above 1 needs DATABASE_URL (the embedded database serves one process)')
  }
  return { env: e, problems }
}

/**
 * Loads and validates the environment only, for processes that serve no routes (the admin API and the demo
 * services run on their own); `required` names settings this process cannot run without.
 * @throws ConfigError with every problem
 */
export function loadEnv(env: NodeJS.ProcessEnv = process.env, required: ReadonlyArray<{ name: keyof EnvConfig; why: string }> = []): EnvConfig {
  const { env: e, problems } = parseEnv(env)
  for (const r of required) if (env[r.name] === undefined) problems.push(`environment: ${r.name} is required ${r.why}`)
  if (problems.length || !e) throw new ConfigError(problems)
  return deepFreeze(e)
}

/**
 * Loads and validates the environment and the route file, listing every problem at once, then freezes.
 * @throws ConfigError with every problem
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KeygateConfig {
  const { env: e, problems } = parseEnv(env)
  const filePath = e?.KEYGATE_CONFIG ?? env.KEYGATE_CONFIG ?? 'config/keygate.yaml'
  let file: FileConfig | undefined
  let text: string | undefined
  try {
    text = readFileSync(filePath, 'utf8')
  } catch (err) {
    problems.push(`${filePath}: cannot read the configuration file (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  if (text !== undefined) {
    const r = parseFileConfig(text, filePath, env)
    problems.push(...r.problems)
    file = r.config
  }
  if (problems.length || !e || !file) throw new ConfigError(problems)
  return deepFreeze({ env: e, file, filePath })
}
