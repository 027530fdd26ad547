import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { AggregatorRegistry } from 'prom-client'
import type { KeygateConfig } from '../config/load.ts'
import type { Logger } from '../core/logger.ts'

/**
 * `KEYGATE_WORKERS=N|auto`: the primary process forks N gateway workers that share the listening port
 * (Node's cluster module), serves their metrics summed on METRICS_PORT, replaces a worker that dies, and on
 * SIGTERM drains every worker before it exits. Signals: SIGHUP reloads routes in every worker.
 */
export function runPrimary(config: KeygateConfig, workers: number, logger: Logger): void {
  let stopping = false
  const fork = () => cluster.fork({ KEYGATE_CLUSTER_WORKER: '1' })
  for (let i = 0; i < workers; i++) fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
      return
    }
    logger.error('worker died; starting another', { pid: worker.process.pid ?? null, code, signal })
    setTimeout(fork, 500)
  })

  const aggregator = new AggregatorRegistry()
  const metrics = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end()
    aggregator.clusterMetrics().then((text) => {
      res.writeHead(200, { 'content-type': aggregator.contentType })
      res.end(text)
    }, (err: unknown) => {
      logger.error('metrics aggregation failed', { error: String((err as Error)?.message ?? err) })
      res.writeHead(500).end()
    })
  })
  metrics.listen(config.env.METRICS_PORT, config.env.METRICS_HOST)

  const forward = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal)
  }
  process.on('SIGHUP', () => forward('SIGHUP'))
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true
      logger.info('shutting down workers', { signal })
      metrics.close()
      forward('SIGTERM')
      setTimeout(() => process.exit(1), config.env.KEYGATE_SHUTDOWN_GRACE_MS + 5000).unref()
    })
  }
  logger.info('keygate primary started', { workers, port: config.env.PORT, metrics_port: config.env.METRICS_PORT })
}
