import express from 'express'
import type { Accounts } from '../core/accounts.ts'
import type { AttemptLimiter } from '../core/attempt-limiter.ts'
import type { ApiKeys } from '../core/api-keys.ts'
import type { ClientAddressProof } from '../core/client-address-proof.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import type { Logger } from '../core/logger.ts'
import type { PasswordResets } from '../core/password-resets.ts'
import type { VerifyIdentityOptions } from '@keygate/verify'
import { errorHandler, sendError, verifyClientAddress } from './http.ts'
import { consoleRoutes } from './console.ts'
import { refuseCrossSite } from './cross-site.ts'
import { identityMiddleware } from './identity.ts'
import { openApiDocument } from './openapi.ts'
import { apiKeyRoutes } from './routes-api-keys.ts'
import { passwordResetRoutes } from './routes-password-reset.ts'
import { publicSessionRoutes, sessionRoutes } from './routes-session.ts'
import { sessionListRoutes } from './routes-sessions.ts'
import { userRoutes } from './routes-users.ts'

/** What the admin API needs; only the composition roots build these. */
export interface AdminApiDeps {
  db: Db
  clock: Clock
  accounts: Accounts
  keys: ApiKeys
  loginLimiter: AttemptLimiter
  /** Password reset by mail; unset without a mail transport (its routes then answer 501). */
  resets?: PasswordResets
  logger: Logger
  allowRegistration: boolean
  refreshTtlSec: number
  identity: VerifyIdentityOptions & { header: string }
  /** Largest JSON body accepted, bytes. */
  bodyLimit?: number
  /** In the gateway's process: the client address header is believed only with this process's proof. */
  clientAddressProof?: Pick<ClientAddressProof, 'verify'>
  /** Browser origins (KEYGATE_CORS_ORIGINS) that may make the refresh cookie's calls from another origin. */
  trustedOrigins?: readonly string[]
}

/** The control plane: `/api/v1/auth/*`, reached through the gateway. */
export function createAdminApp(deps: AdminApiDeps): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  if (deps.clientAddressProof) app.use(verifyClientAddress(deps.clientAddressProof))
  app.use(express.json({ limit: deps.bodyLimit ?? 16 * 1024, strict: true }))
  const openapi = openApiDocument()
  app.get('/api/v1/openapi.json', (_req, res) => { res.json(openapi) })

  app.use('/console', consoleRoutes())

  const auth = express.Router()
  auth.use(['/login', '/refresh', '/register', '/logout'], refuseCrossSite(deps.trustedOrigins ?? []))
  auth.use(publicSessionRoutes(deps))
  auth.use(passwordResetRoutes(deps))
  auth.use(identityMiddleware(deps.identity))
  auth.use(sessionRoutes(deps))
  auth.use(sessionListRoutes(deps))
  auth.use(apiKeyRoutes(deps))
  auth.use(userRoutes(deps))
  app.use('/api/v1/auth', auth)
  app.use((_req, res) => sendError(res, 'NOT_FOUND'))
  app.use(errorHandler(deps.logger))
  return app
}
