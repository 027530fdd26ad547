import type { EnvConfig } from '../config/schema.ts'
import { accounts as makeAccounts } from './accounts.ts'
import { apiKeyFormat } from './api-key-format.ts'
import { apiKeys as makeApiKeys } from './api-keys.ts'
import { memoryAttemptLimiter, redisAttemptLimiter, type AttemptLimiter, type RedisCounterClient } from './attempt-limiter.ts'
import type { Clock } from './clock.ts'
import type { Db } from './db.ts'
import { KeygateError } from './errors.ts'
import type { InvalidationPublisher } from './invalidation-publisher.ts'
import type { Logger } from './logger.ts'
import { smtpMailer } from './mailer.ts'
import { passwordHasher } from './password.ts'
import { passwordResets } from './password-resets.ts'
import { sharedSecret } from './secrets.ts'
import { tokenService } from './tokens.ts'
import { userStore } from './user-store.ts'

export interface ControlPlaneDeps {
  env: EnvConfig
  db: Db
  clock: Clock
  /** How access-removing writes are committed and announced (on the deployment's transport, so every gateway hears them). */
  publisher: InvalidationPublisher
  /** Set when the deployment has Redis: login attempt counters are then shared by every instance. */
  redis?: RedisCounterClient
  logger: Logger
}

/**
 * The services behind the admin API, built alike by every composition root that serves it (the gateway with
 * its in-process admin API, `admin-api/main.ts` on its own): access tokens signed with KEYGATE_JWT_SECRET or
 * the secret shared through the database (so every process issues and accepts the same tokens), the API key
 * format, accounts, API keys and login attempt counters. Creates the bootstrap superuser when it is configured
 * and missing.
 */
export async function controlPlane(deps: ControlPlaneDeps) {
  const { env, db, clock, publisher, logger } = deps
  const jwtSecret = env.KEYGATE_JWT_SECRET ?? (await sharedSecret(db, 'jwt_secret'))
  const tokens = tokenService({ secret: jwtSecret, issuer: env.KEYGATE_ISSUER, audience: `${env.KEYGATE_ISSUER}:access`, accessTtlSec: env.KEYGATE_ACCESS_TOKEN_TTL, refreshTtlSec: env.KEYGATE_REFRESH_TOKEN_TTL, clock })
  const hasher = passwordHasher({ logN: env.KEYGATE_PASSWORD_HASH_LOG_N, maxQueue: env.KEYGATE_PASSWORD_HASH_QUEUE })
  const format = apiKeyFormat(env.KEYGATE_API_KEY_PREFIX)

  const accounts = makeAccounts({ db, clock, hasher, tokens, publisher, refreshReuseWindowMs: env.KEYGATE_REFRESH_REUSE_WINDOW_MS })
  const keys = makeApiKeys({ db, clock, format, publisher, maxActivePerUser: env.KEYGATE_MAX_KEYS_PER_USER })
  if (env.KEYGATE_BOOTSTRAP_USERNAME && env.KEYGATE_BOOTSTRAP_PASSWORD && env.KEYGATE_BOOTSTRAP_EMAIL && !(await userStore.exists(db, env.KEYGATE_BOOTSTRAP_USERNAME))) {
    try {
      await accounts.createUser({ username: env.KEYGATE_BOOTSTRAP_USERNAME, password: env.KEYGATE_BOOTSTRAP_PASSWORD, email: env.KEYGATE_BOOTSTRAP_EMAIL, isSuperuser: true })
      logger.info('bootstrap user created', { username: env.KEYGATE_BOOTSTRAP_USERNAME })
    } catch (err) {
      // Another instance starting at the same moment created it first.
      if (!(err instanceof KeygateError && err.code === 'USER_EXISTS')) throw err
    }
  }
  if (!(await userStore.list(db, 1, 0)).length) {
    logger.warn('no users yet: set KEYGATE_BOOTSTRAP_USERNAME, KEYGATE_BOOTSTRAP_EMAIL and KEYGATE_BOOTSTRAP_PASSWORD, or run `npm run keygate -- users create --username NAME --email EMAIL` while the gateway is stopped')
  }

  const limiterPolicy = { max: env.KEYGATE_LOGIN_MAX_ATTEMPTS, windowMs: env.KEYGATE_LOGIN_WINDOW_SEC * 1000 }
  let loginLimiter: AttemptLimiter = memoryAttemptLimiter(limiterPolicy, clock)
  if (deps.redis) loginLimiter = redisAttemptLimiter(limiterPolicy, deps.redis, env.KEYGATE_REDIS_PREFIX, loginLimiter, (err) => logger.warn('redis unavailable for login counters', { error: String((err as Error)?.message ?? err) }))

  // Without a mail transport there is no password reset (its routes answer 501). An SMTP transport opens no
  // connection until it sends (one per mail), so there is nothing to close on shutdown.
  const resets = env.KEYGATE_SMTP_URL && env.KEYGATE_MAIL_FROM
    ? passwordResets({ db, clock, hasher, accounts, mailer: smtpMailer(env.KEYGATE_SMTP_URL, env.KEYGATE_MAIL_FROM), logger })
    : undefined

  return {
    tokens,
    format,
    accounts,
    keys,
    loginLimiter,
    /** What `createAdminApp` needs besides its logger and where identities are verified. */
    adminDeps: { db, clock, accounts, keys, loginLimiter, resets, allowRegistration: env.KEYGATE_ALLOW_REGISTRATION, refreshTtlSec: env.KEYGATE_REFRESH_TOKEN_TTL, trustedOrigins: env.KEYGATE_CORS_ORIGINS },
  }
}
