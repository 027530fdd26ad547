import type { Logger } from './logger.ts'

/**
 * The entry points' way to stop: on SIGTERM or SIGINT, log `shutting down`, close `service` (it drains), and
 * exit 0 when that succeeded, 1 when it failed.
 */
export function stopOnSignals(service: { logger: Logger; close(): Promise<void> }): void {
  const stop = (signal: string) => {
    service.logger.info('shutting down', { signal })
    service.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}
