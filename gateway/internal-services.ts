import { createServer, type Server } from 'node:http'
import { createAdminApp, type AdminApiDeps } from '../admin-api/app.ts'
import { ADMIN_AUDIENCE } from '../admin-api/identity.ts'
import type { KeygateConfig } from '../config/load.ts'
import { TUNABLES } from '../config/tunables.ts'
import type { Cleanups } from '../core/cleanups.ts'
import type { Clock } from '../core/clock.ts'
import type { ClientAddressProof } from '../core/client-address-proof.ts'
import { closeServer, listen } from '../core/http-listen.ts'
import type { IdentitySigner } from '../core/identity-signer.ts'
import type { Logger } from '../core/logger.ts'
import { createConversationService } from '../examples/demo-conversations.ts'
import { createDocumentService } from '../examples/demo-documents.ts'
import { remoteKeySource, staticKeySource, type KeySource } from '@keygate/verify'

/**
 * The services Keygate runs in-process on free loopback ports, named by `internal:<name>` upstream URLs: the
 * admin API (`internal:admin`) and, with KEYGATE_DEMOS, the demo services. Only those the route file names are
 * started. Returns where each listens; `jwksUrl` is set once the gateway listens (the demos fetch the gateway's
 * published key set over HTTP, like any upstream).
 */
export async function startInternalServices(deps: {
  config: KeygateConfig
  /** What the admin API needs besides its logger, identity and address proof (`controlPlane().adminDeps`). */
  adminDeps: Omit<AdminApiDeps, 'logger' | 'identity' | 'clientAddressProof'>
  addressProof: ClientAddressProof
  signer: () => IdentitySigner
  clock: Clock
  logger: Logger
  cleanups: Cleanups
}): Promise<{ internal: ReadonlyMap<string, string>; setJwksUrl(url: string): void }> {
  const { config, clock } = deps
  const env = config.env
  const internal = new Map<string, string>()
  const servers: Server[] = []
  deps.cleanups.unshift(async () => { await Promise.all(servers.map((s) => closeServer(s, TUNABLES.shutdown.internalCloseMs))) })
  const wanted = new Set(Object.values(config.file.upstreams).flatMap((u) => ([] as string[]).concat(u.url)).filter((u) => u.startsWith('internal:')).map((u) => u.slice('internal:'.length)))
  const start = async (name: string, server: Server) => {
    servers.push(server)
    internal.set(name, `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`)
  }
  // The in-process admin API listens on loopback, where any local process can call it: it believes the client
  // address only with a proof made with this process's secret.
  if (wanted.has('admin')) {
    const app = createAdminApp({
      ...deps.adminDeps, logger: deps.logger.child({ component: 'admin-api' }), clientAddressProof: deps.addressProof,
      identity: { keys: () => deps.signer().jwks().keys, audience: ADMIN_AUDIENCE, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER, now: clock.now },
    })
    await start('admin', createServer(app))
  }
  // The demos verify like any upstream: against the gateway's published key set, fetched over HTTP.
  let jwksUrl = ''
  let remote: KeySource | undefined
  // Without a URL (a TLS listener, whose certificate these in-process clients need not trust) they read the
  // same keys in process.
  const published: KeySource = { get: (kid) => (remote ??= jwksUrl ? remoteKeySource(jwksUrl) : staticKeySource(() => deps.signer().jwks().keys)).get(kid) }
  if (env.KEYGATE_DEMOS) {
    const verify = { keys: published, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER, now: clock.now }
    if (wanted.has('demo-conversations')) await start('demo-conversations', createConversationService({ ...verify, audience: 'conversations' }))
    if (wanted.has('demo-documents')) await start('demo-documents', createDocumentService({ ...verify, audience: 'documents' }))
  }
  return { internal, setJwksUrl: (url) => { jwksUrl = url } }
}
