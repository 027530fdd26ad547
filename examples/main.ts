import { createServer, type Server } from 'node:http'
import { pathToFileURL } from 'node:url'
import { loadEnv, withoutEmpty } from '../config/load.ts'
import { ConfigError } from '../core/errors.ts'
import { closeServer, listen } from '../core/http-listen.ts'
import { jsonLogger } from '../core/logger.ts'
import { remoteKeySource, type VerifyIdentityOptions } from '@keygate/verify'
import { createConversationService } from './demo-conversations.ts'
import { createDocumentService } from './demo-documents.ts'
import { stopOnSignals } from '../core/signals.ts'

/** The demo services, by the upstream name (and identity audience) the route file gives them. */
const DEMOS = {
  conversations: createConversationService,
  documents: createDocumentService,
} as const satisfies Record<string, (verify: VerifyIdentityOptions) => Server>

export type DemoName = keyof typeof DEMOS

/** Settings a demo service cannot run on its own without (`test/docs/compose.test.ts` holds docker-compose.yml to them). */
export const DEMO_REQUIRED = [{ name: 'KEYGATE_JWKS_URL', why: 'by a demo service run on its own: the gateway\'s key set, against which it verifies the identity header' }] as const

/**
 * Runs one demo service as its own process (`npm run demo:conversations`, `npm run demo:documents`), the way
 * any upstream runs behind Keygate: it verifies the identity header against the gateway's key set at
 * KEYGATE_JWKS_URL (required), listens on HOST:PORT, and answers `/healthz` for the orchestrator.
 * @throws ConfigError listing every configuration problem
 */
export async function startDemo(name: DemoName, rawEnv: NodeJS.ProcessEnv = process.env, write?: (line: string) => void) {
  const env = loadEnv(withoutEmpty(rawEnv), DEMO_REQUIRED)
  const logger = jsonLogger({ level: env.LOG_LEVEL, write, base: { service: `keygate-demo-${name}` } })
  // `requireIdentity`, which the demos use, reads `header` from the same options.
  const verify: VerifyIdentityOptions & { header: string } = { keys: remoteKeySource(env.KEYGATE_JWKS_URL!), audience: name, issuer: env.KEYGATE_ISSUER, header: env.KEYGATE_IDENTITY_HEADER }
  const demo = DEMOS[name](verify)
  // The demo answers everything else; `/healthz` needs no identity.
  const server = createServer((req, res) => {
    if (req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ status: 'ok' }))
    }
    demo.emit('request', req, res)
  })
  const port = await listen(server, env.PORT, env.HOST)
  logger.info('demo listening', { demo: name, url: `http://${env.HOST}:${port}`, jwks_url: env.KEYGATE_JWKS_URL! })
  return { url: `http://127.0.0.1:${port}`, port, logger, close: () => closeServer(server, env.KEYGATE_SHUTDOWN_GRACE_MS) }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const name = process.argv[2]
  const fail = (message: string): never => {
    process.stderr.write(`keygate demo: ${message}\n`)
    process.exit(1)
  }
  if (!name || !Object.hasOwn(DEMOS, name)) fail(`usage: npm run demo:NAME, where NAME is ${Object.keys(DEMOS).join(" or ")}`)
  startDemo(name as DemoName).then(stopOnSignals, (err: unknown) => fail(err instanceof ConfigError || err instanceof Error ? err.message : String(err)))
}
