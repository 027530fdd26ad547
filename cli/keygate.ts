import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseFileConfig } from '../config/load.ts'
import { envSchema } from '../config/schema.ts'
import { accounts, type Accounts } from '../core/accounts.ts'
import { apiKeyFormat } from '../core/api-key-format.ts'
import { apiKeys, type ApiKeys } from '../core/api-keys.ts'
import { systemClock } from '../core/clock.ts'
import { ConfigError, KeygateError } from '../core/errors.ts'
import type { InvalidationBus } from '../core/invalidation.ts'
import { jsonLogger } from '../core/logger.ts'
import { createMetrics } from '../core/metrics.ts'
import { migrate } from '../core/migrate.ts'
import { openDatabase } from '../core/open-database.ts'
import { passwordHasher } from '../core/password.ts'
import { sharedSecret } from '../core/secrets.ts'
import { RotationTooSoonError, signingKeyStore } from '../core/signing-key-store.ts'
import { tokenService } from '../core/tokens.ts'
import { userStore } from '../core/user-store.ts'
import { CreateUserRequest } from '../admin-api/schemas.ts'
import { cachesAndInvalidation } from '../gateway/caches-and-invalidation.ts'
import { readSecret } from './read-secret.ts'

/**
 * The operator's CLI (a composition root like gateway/main.ts), on the same database settings as the gateway:
 *   users create --username NAME --email E [--full-name N] [--superuser]   password from a prompt or stdin
 *   users list | deactivate --username N | activate --username N
 *   keys list --username N | revoke --username N --id ID
 *   signing-keys list | rotate
 *   config check FILE
 * Revocations go out on the gateways' own transport (Redis pub/sub with REDIS_URL, else LISTEN/NOTIFY on a
 * PostgreSQL server), so running gateways drop them at once.
 * Passwords are never taken from argv (they would land in shell history and `ps`).
 */
const USAGE = `usage:
  npm run keygate -- users create --username NAME --email EMAIL [--full-name NAME] [--superuser]
  npm run keygate -- users list
  npm run keygate -- users deactivate --username NAME
  npm run keygate -- users activate --username NAME
  npm run keygate -- keys list --username NAME
  npm run keygate -- keys revoke --username NAME --id KEY_ID
  npm run keygate -- signing-keys list
  npm run keygate -- signing-keys rotate [--force]
  npm run keygate -- config check FILE`

function fail(message: string, code = 2): never {
  process.stderr.write(`keygate: ${message}\n`)
  process.exit(code)
}

interface Context {
  bus: InvalidationBus
  db: Awaited<ReturnType<typeof openDatabase>>
  env: ReturnType<typeof envSchema.parse>
  accounts: Accounts
  keys: ApiKeys
}

async function withDatabase<T>(fn: (ctx: Context) => Promise<T>): Promise<T> {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== '')))
  if (!parsed.success) fail(`invalid environment: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  const env = parsed.data
  const db = await openDatabase(env)
  const cleanups: Array<() => Promise<void>> = []
  try {
    await migrate(db)
    // The gateways' own invalidation transport (Redis pub/sub with shared-cache tombstones, else LISTEN/NOTIFY),
    // so what the CLI revokes is dropped by every running gateway at once.
    const logger = jsonLogger({ level: 'warn', write: (line) => process.stderr.write(line + '\n') })
    const { bus } = await cachesAndInvalidation({ env, db, metrics: createMetrics({ defaultMetrics: false }), logger, cleanups })
    const clock = systemClock
    const tokens = tokenService({ secret: env.KEYGATE_JWT_SECRET ?? (await sharedSecret(db, 'jwt_secret')), issuer: env.KEYGATE_ISSUER, audience: `${env.KEYGATE_ISSUER}:access`, accessTtlSec: env.KEYGATE_ACCESS_TOKEN_TTL, refreshTtlSec: env.KEYGATE_REFRESH_TOKEN_TTL, clock })
    const acc = accounts({ db, clock, hasher: passwordHasher({ logN: env.KEYGATE_PASSWORD_HASH_LOG_N }), tokens, bus })
    const keys = apiKeys({ db, clock, format: apiKeyFormat(env.KEYGATE_API_KEY_PREFIX), bus, maxActivePerUser: env.KEYGATE_MAX_KEYS_PER_USER })
    return await fn({ bus, db, env, accounts: acc, keys })
  } finally {
    for (const cleanup of cleanups) await cleanup()
    await db.close()
  }
}

async function userByName(db: Context['db'], username: string) {
  const found = await userStore.findForLogin(db, { username })
  if (!found) fail(`no user named ${username}`, 1)
  return found
}

async function main(argv: string[]): Promise<void> {
  const [group, command, ...rest] = argv
  if (group === 'config' && command === 'check') {
    const file = rest[0] ?? fail(USAGE)
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      return fail(`${file}: cannot read (${(err as NodeJS.ErrnoException).code})`, 1)
    }
    const { problems } = parseFileConfig(text, file, process.env)
    if (problems.length) fail(`${file} is invalid:\n  - ${problems.join('\n  - ')}`, 1)
    process.stdout.write(`${file}: ok\n`)
    return
  }
  if (group === 'users' && command === 'create') {
    const { values } = parseArgs({ args: rest, options: { username: { type: 'string' }, email: { type: 'string' }, 'full-name': { type: 'string' }, superuser: { type: 'boolean' } }, strict: true })
    if (!values.username || !values.email) fail(USAGE)
    const password = await readSecret('Password: ', { confirm: 'Repeat password: ' })
    const input = CreateUserRequest.safeParse({ username: values.username, password, email: values.email, full_name: values['full-name'], is_superuser: values.superuser })
    if (!input.success) fail(input.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), 1)
    await withDatabase(async ({ accounts: acc }) => {
      const d = input.data
      const user = await acc.createUser({ username: d.username, password: d.password, email: d.email, profile: { full_name: d.full_name }, isSuperuser: d.is_superuser }, { address: 'cli' })
      process.stdout.write(`created user ${user.username} (${user.id})${user.is_superuser ? ' as superuser' : ''}\n`)
    })
    return
  }
  if (group === 'users' && command === 'list') {
    await withDatabase(async ({ db }) => {
      for (const u of await userStore.list(db, 1000, 0)) {
        process.stdout.write(`${u.id}  ${u.username}${u.is_superuser ? '  superuser' : ''}${u.is_active ? '' : '  inactive'}\n`)
      }
    })
    return
  }
  if (group === 'users' && (command === 'deactivate' || command === 'activate')) {
    const { values } = parseArgs({ args: rest, options: { username: { type: 'string' } }, strict: true })
    if (!values.username) fail(USAGE)
    await withDatabase(async ({ db, accounts: acc }) => {
      const user = await userByName(db, values.username!)
      await acc.setActive(user.id, command === 'activate', { address: 'cli' })
      process.stdout.write(`${command}d ${user.username}${command === 'deactivate' ? ': every session and API key of the user ended' : ''}\n`)
    })
    return
  }
  if (group === 'keys' && (command === 'list' || command === 'revoke')) {
    const { values } = parseArgs({ args: rest, options: { username: { type: 'string' }, id: { type: 'string' } }, strict: true })
    if (!values.username || (command === 'revoke' && !values.id)) fail(USAGE)
    await withDatabase(async ({ db, keys }) => {
      const user = await userByName(db, values.username!)
      if (command === 'list') {
        for (const k of await keys.list(user.id)) {
          const state = k.revoked_at ? 'revoked' : k.expires_at && k.expires_at.getTime() <= Date.now() ? 'expired' : 'active'
          process.stdout.write(`${k.id}  ${k.display}  ${state}  ${JSON.stringify(k.name)}\n`)
        }
        return
      }
      if (!(await keys.revoke(user.id, values.id!, { address: 'cli' }))) fail(`${user.username} has no active key ${values.id}`, 1)
      process.stdout.write(`revoked ${values.id}\n`)
    })
    return
  }
  if (group === 'signing-keys' && (command === 'list' || command === 'rotate')) {
    await withDatabase(async ({ db, env, bus }) => {
      if (env.KEYGATE_SIGNING_KEY || env.KEYGATE_SIGNING_KEY_FILE) fail('the signing keys come from configuration (KEYGATE_SIGNING_KEY or KEYGATE_SIGNING_KEY_FILE): rotate them there', 1)
      await signingKeyStore.ensure(db, env.KEYGATE_SIGNING_ALG)
      if (command === 'rotate') {
        const { values } = parseArgs({ args: rest, options: { force: { type: 'boolean' } }, strict: true })
        const kid = await signingKeyStore.rotate(db, env.KEYGATE_SIGNING_ALG, new Date(), { leadSec: env.KEYGATE_SIGNING_KEY_LEAD_SEC, force: values.force })
        await bus.publish({ kind: 'signing-keys' })
        process.stdout.write(`rotated: ${kid} signs now; the previous key stays published for ${env.KEYGATE_IDENTITY_TTL + 60}s, a new next key is published\n`)
      }
      const keys = await signingKeyStore.published(db, new Date(), env.KEYGATE_IDENTITY_TTL + 60)
      keys.forEach((k, i) => process.stdout.write(`${k.kid}  ${k.alg}  ${i === 0 ? 'current (signs)' : i === 1 ? 'next' : 'previous'}\n`))
    })
    return
  }
  fail(USAGE)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof KeygateError && err.code === 'USER_EXISTS') fail('a user with this username or email already exists', 1)
  if (err instanceof ConfigError || err instanceof RotationTooSoonError) fail(err.message, 1)
  if (err instanceof KeygateError) fail(`${err.code}: ${err.message}`, 1)
  fail(err instanceof Error ? err.message : String(err), 1)
})
