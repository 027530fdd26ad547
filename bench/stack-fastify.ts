import type { AddressInfo } from 'node:net'
import fastifyHttpProxy from '@fastify/http-proxy'
import fastifyJwt from '@fastify/jwt'
import Fastify, { LogController } from 'fastify'
import pg from 'pg'
import { stackKeyLookup } from './stack-key-lookup.ts'
import { stackSettings } from './stack-settings.ts'

declare module 'fastify' {
  interface FastifyRequest { userId: string }
}

/**
 * The gateway a Node team writes with Fastify, `@fastify/http-proxy` and `@fastify/jwt`, for the stack rows of
 * `npm run bench`: an `onRequest` hook authenticates `Authorization: Bearer <credential>`, an API key (`sk_…`,
 * bench/stack-key-lookup.ts) or Keygate's access token (`request.jwtVerify()`, HS256, issuer and audience
 * checked); the proxy (undici underneath, its defaults) forwards with `x-user-id` set over the client's own.
 * Fastify's logger (pino) writes one line per request to a file: the two default lines of Fastify and the two of
 * the proxy per request are replaced by one in `onResponse`, as the other rows write one.
 *
 * Not done, unlike Keygate: no session revocation for tokens (valid until `exp`), no signed identity (the
 * upstream must trust a plain header), no metrics, no rate limits, no header sanitising beyond `x-user-id`.
 * Usage: `tsx bench/stack-fastify.ts` with the STACK_* settings of bench/stack-settings.ts; prints its URL once
 * it listens.
 */
const settings = stackSettings(process.env)
const pool = new pg.Pool({ connectionString: settings.databaseUrl, options: `-c search_path=${settings.schema}`, max: 10 })
const keys = stackKeyLookup({ query: (text, values) => pool.query(text, values) })

const app = Fastify({ logger: { level: 'info', file: settings.log }, logController: new LogController({ disableRequestLogging: true }) })
app.decorateRequest('userId', '')
await app.register(fastifyJwt, { secret: settings.jwtSecret, verify: { algorithms: ['HS256'], allowedIss: settings.issuer, allowedAud: settings.audience } })
app.addHook('onRequest', async (request, reply) => {
  const header = request.headers.authorization
  let userId: string | null = null
  if (header?.startsWith('Bearer sk_')) userId = await keys.userOf(header.slice(7))
  else if (header?.startsWith('Bearer ')) {
    try {
      userId = (await request.jwtVerify<{ sub?: unknown }>()).sub as string
    } catch {
      userId = null
    }
    if (typeof userId !== 'string') userId = null
  }
  if (!userId) return reply.code(401).send({ error: 'unauthorized' })
  request.userId = userId
})
app.addHook('onResponse', async (request, reply) => {
  request.log.info({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime, user: request.userId || undefined }, 'request')
})
await app.register(fastifyHttpProxy, {
  upstream: settings.upstream,
  // Its own two lines per forwarded request ("fetching from remote server", "response received") off: one line.
  disableRequestLogging: true,
  replyOptions: { rewriteRequestHeaders: (request, headers) => ({ ...headers, 'x-user-id': request.userId }) },
})
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`listening http://127.0.0.1:${(app.server.address() as AddressInfo).port}\n`)
process.once('SIGTERM', () => process.exit(0))
