import { createServer, type Server, type ServerResponse } from 'node:http'
import { requireIdentity, type IdentifiedRequest, type VerifyIdentityOptions } from '@keygate/verify'

/**
 * Demo conversation service: trusts only the identity Keygate injects, through `@keygate/verify`.
 *   GET /api/v1/conversations[/]            → the caller's conversations and the identity it verified
 *   GET /api/v1/conversations/{id}/streaming → a few server-sent events, one every `eventIntervalMs`
 */
export function createConversationService(verify: VerifyIdentityOptions, options: { eventIntervalMs?: number } = {}): Server {
  const guard = requireIdentity(verify)
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  return createServer((req: IdentifiedRequest, res) => {
    guard(req, res, () => {
      const identity = req.identity!
      const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '')
      if (req.method === 'GET' && path === '/api/v1/conversations') {
        return json(res, 200, {
          service: 'conversations',
          verified_identity: { user_id: identity.sub, username: identity.username, auth: identity.auth, key_id: identity.keyId, audience: identity.audience },
          conversations: [{ id: 'c1', title: `Welcome, ${identity.username}` }],
        })
      }
      const stream = /^\/api\/v1\/conversations\/([A-Za-z0-9-]+)\/streaming$/.exec(path)
      if (req.method === 'GET' && stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        let n = 0
        const timer = setInterval(() => {
          n++
          res.write(`id: ${n}\nevent: message\ndata: ${JSON.stringify({ conversation: stream[1], n, user: identity.username })}\n\n`)
          if (n === 5) {
            clearInterval(timer)
            res.end()
          }
        }, options.eventIntervalMs ?? 200)
        res.on('close', () => clearInterval(timer))
        return
      }
      json(res, 404, { detail: 'Not Found' })
    })
  })
}
