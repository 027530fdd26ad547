import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { answerClientErrors, requestRefusal, serverOptions, type HttpLimits } from '../core/http-guard.ts'
import { writeProblem } from '../core/problem.ts'
import { VERSION } from '../core/version.ts'

/**
 * The HTTP server of the admin API when it runs as its own process: `/healthz` (alive, with the version, as the
 * gateway's) and `/readyz`
 * (database reachable, migrations applied, not draining) for the orchestrator, and everything else to the
 * admin app. In the gateway's process the app needs neither: the gateway answers both for the process.
 */
export interface AdminServerDeps {
  app(req: IncomingMessage, res: ServerResponse): void
  ready(): Promise<boolean>
  limits: HttpLimits
}

export function createAdminServer(deps: AdminServerDeps): Server {
  const server = createServer(serverOptions(deps.limits), (req, res) => {
    const refused = requestRefusal(req, deps.limits)
    if (refused) {
      res.shouldKeepAlive = false
      return writeProblem(res, refused)
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (req.url === '/healthz' || req.url === '/readyz')) {
      const answer = (ok: boolean) => {
        if (!ok) return writeProblem(res, 'NOT_READY')
        const body = JSON.stringify(req.url === '/healthz' ? { status: 'ok', version: VERSION } : { status: 'ready' })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      }
      if (req.url === '/healthz') return answer(true)
      deps.ready().then(answer, () => answer(false))
      return
    }
    deps.app(req, res)
  })
  answerClientErrors(server)
  return server
}
