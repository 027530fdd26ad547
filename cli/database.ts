import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { EnvConfig } from '../config/schema.ts'
import { accounts, type Accounts } from '../core/accounts.ts'
import { apiKeyFormat } from '../core/api-key-format.ts'
import { apiKeys, type ApiKeys } from '../core/api-keys.ts'
import { systemClock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import type { Invalidation } from '../core/invalidation.ts'
import { openInvalidation } from '../core/invalidation-setup.ts'
import { jsonLogger } from '../core/logger.ts'
import { migrate } from '../core/migrate.ts'
import { openDatabase } from '../core/open-database.ts'
import { openRedis } from '../core/redis-connect.ts'
import { passwordHasher } from '../core/password.ts'
import { sharedSecret } from '../core/secrets.ts'
import { tokenService } from '../core/tokens.ts'

/** What a command that works on the database gets. */
export interface Context {
  /** Announces a change that has no write of its own (a rotation); revocations announce through `accounts` and `keys`. */
  bus: { publish(message: Invalidation): Promise<void> }
  db: Db
  env: EnvConfig
  accounts: Accounts
  keys: ApiKeys
}

/** Something the CLI refuses to do for a reason other than its command line: exit status 1. */
export class Refusal extends Error {
  override readonly name = 'Refusal'
}

/**
 * Where the database is, as the CLI tells the operator (on stderr): the server, database and schema of
 * DATABASE_URL (never its user or password), or the embedded database's directory.
 */
export function describeDatabase(env: Pick<EnvConfig, 'DATABASE_URL' | 'DATABASE_SCHEMA' | 'KEYGATE_DATA_DIR'>): string {
  if (!env.DATABASE_URL) return `embedded PostgreSQL (PGlite) in ${resolve(env.KEYGATE_DATA_DIR)}`
  const url = new URL(env.DATABASE_URL)
  const name = decodeURIComponent(url.pathname.replace(/^\//, '')) || '(default database)'
  return `PostgreSQL ${url.hostname}${url.port ? `:${url.port}` : ''}/${name}${env.DATABASE_SCHEMA ? `, schema ${env.DATABASE_SCHEMA}` : ''}`
}

/**
 * Opens the gateway's database (applying missing migrations), says on stderr which one, runs `fn`, closes.
 * An embedded data directory with no database in it is refused unless `init`: a mistyped KEYGATE_DATA_DIR, or
 * the CLI run from another directory than the gateway, would otherwise create users in a database no gateway
 * reads.
 * @throws Refusal when the embedded database does not exist and `init` is not set
 */
export async function withDatabase<T>(env: EnvConfig, options: { init: boolean; say: (line: string) => void }, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const where = describeDatabase(env)
  const embeddedNew = !env.DATABASE_URL && !existsSync(join(resolve(env.KEYGATE_DATA_DIR), 'pgdata', 'PG_VERSION'))
  if (embeddedNew && !options.init) {
    throw new Refusal(`no database in ${resolve(env.KEYGATE_DATA_DIR)} (KEYGATE_DATA_DIR, default ./data): run the CLI where the gateway runs, set KEYGATE_DATA_DIR or DATABASE_URL as the gateway has them, or add --init to create a new, empty database there`)
  }
  const db = await openDatabase(env)
  options.say(`database: ${where}${embeddedNew ? ' (created)' : ''}`)
  const cleanups: Array<() => Promise<void>> = []
  try {
    await migrate(db)
    // The gateways' own invalidation transport (Redis pub/sub with shared-cache tombstones, else LISTEN/NOTIFY),
    // so what the CLI revokes is dropped by every running gateway at once.
    const logger = jsonLogger({ level: 'warn', write: (line) => process.stderr.write(line + '\n') })
    const { publisher } = await openInvalidation({ env, db, redis: openRedis(env.REDIS_URL, cleanups), logger, cleanups })
    const bus = { publish: (m: Invalidation) => publisher.announce([m]) }
    const clock = systemClock
    const tokens = tokenService({ secret: env.KEYGATE_JWT_SECRET ?? (await sharedSecret(db, 'jwt_secret')), issuer: env.KEYGATE_ISSUER, audience: `${env.KEYGATE_ISSUER}:access`, accessTtlSec: env.KEYGATE_ACCESS_TOKEN_TTL, refreshTtlSec: env.KEYGATE_REFRESH_TOKEN_TTL, clock })
    const acc = accounts({ db, clock, hasher: passwordHasher({ logN: env.KEYGATE_PASSWORD_HASH_LOG_N }), tokens, publisher })
    const keys = apiKeys({ db, clock, format: apiKeyFormat(env.KEYGATE_API_KEY_PREFIX), publisher, maxActivePerUser: env.KEYGATE_MAX_KEYS_PER_USER })
    return await fn({ bus, db, env, accounts: acc, keys })
  } finally {
    for (const cleanup of cleanups) await cleanup()
    await db.close()
  }
}
