import { createSecretKey } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { Agent, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import httpProxy from 'http-proxy'
import jwt from 'jsonwebtoken'
import morgan from 'morgan'
import pg from 'pg'
import { stackKeyLookup } from './stack-key-lookup.ts'
import { stackSettings } from './stack-settings.ts'

/**
 * The gateway a Node team writes with Express, `http-proxy` and `jsonwebtoken`, for the stack rows of
 * `npm run bench`: `Authorization: Bearer <credential>`, an API key (`sk_…`, bench/stack-key-lookup.ts) or
 * Keygate's access token (HS256, issuer and audience checked), then `x-user-id` set (a client's own removed)
 * and the request proxied over a keep-alive agent; morgan writes the `combined` access line to a file.
 *
 * Not done, unlike Keygate: no session revocation for tokens (valid until `exp`), no signed identity (the
 * upstream must trust a plain header), no metrics, no rate limits, no header sanitising beyond `x-user-id`.
 * Usage: `tsx bench/stack-express.ts` with the STACK_* settings of bench/stack-settings.ts; prints its URL once
 * it listens.
 */
const settings = stackSettings(process.env)
const pool = new pg.Pool({ connectionString: settings.databaseUrl, options: `-c search_path=${settings.schema}`, max: 10 })
const keys = stackKeyLookup({ query: (text, values) => pool.query(text, values) })
const proxy = httpProxy.createProxyServer({ target: settings.upstream, agent: new Agent({ keepAlive: true, maxSockets: 256 }), xfwd: true })
proxy.on('error', (_err, _req, res) => {
  const r = res as ServerResponse
  if (!r.headersSent) r.writeHead(502, { 'content-type': 'application/json' })
  r.end('{"error":"bad gateway"}')
})

// A key object made once: given the secret as a string, jsonwebtoken first tries it as a public key on every
// call (a thrown error each time), which cost over 1 ms per request on Node 20 here. The stack is measured at
// its better.
const secret = createSecretKey(Buffer.from(settings.jwtSecret))

function userOfToken(token: string): string | null {
  try {
    const claims = jwt.verify(token, secret, { algorithms: ['HS256'], issuer: settings.issuer, audience: settings.audience })
    return typeof claims === 'object' && typeof claims.sub === 'string' ? claims.sub : null
  } catch {
    return null
  }
}

const app = express()
app.disable('x-powered-by')
app.use(morgan('combined', { stream: createWriteStream(settings.log, { flags: 'a' }) }))
app.use(async (req, res, next) => {
  delete req.headers['x-user-id']
  const header = req.headers.authorization
  const credential = header?.startsWith('Bearer ') ? header.slice(7) : undefined
  const userId = !credential ? null : credential.startsWith('sk_') ? await keys.userOf(credential) : userOfToken(credential)
  if (!userId) {
    res.status(401).json({ error: 'unauthorized' })
    return
  }
  req.headers['x-user-id'] = userId
  next()
})
app.use((req: IncomingMessage, res: ServerResponse) => proxy.web(req, res))
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`))
process.once('SIGTERM', () => process.exit(0))
