import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'

/** The Prometheus endpoint of one process: `GET /metrics` with `registry`'s text; anything else is 404. */
export function createMetricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end()
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(text)
    }, () => res.writeHead(500).end())
  })
}
