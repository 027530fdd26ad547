import pg from 'pg'
import { handlerSet, type Invalidation, type InvalidationBus } from './invalidation.ts'

/**
 * Invalidation between processes that share a PostgreSQL server, over LISTEN/NOTIFY. `publish` returns after
 * the server took the notification (and rejects when it could not) and this instance has applied it; every
 * other listening instance receives it as the server delivers it. The listener reconnects by itself; after a reconnect `onResync` runs, because
 * notifications sent while it was away are lost and the caller must flush what it cached.
 */
export interface PgNotifyBusOptions {
  connectionString: string
  channel: string
  /** Runs a statement on the shared pool (publishing does not need the listener's connection). */
  query(sql: string, params: unknown[]): Promise<unknown>
  onResync?(): void
  onError?(err: unknown): void
  reconnectMs?: number
}

interface Envelope { m: Invalidation; at: number }

export function pgNotifyBus(options: PgNotifyBusOptions): InvalidationBus & { start(): Promise<void>; close(): Promise<void> } {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.channel)) throw new RangeError(`invalid channel name ${options.channel}`)
  const handlers = handlerSet()
  let client: pg.Client | undefined
  let closed = false
  let connectedOnce = false
  let timer: NodeJS.Timeout | undefined

  const deliver = (text: string | undefined) => {
    let envelope: Envelope
    try {
      envelope = JSON.parse(text ?? '') as Envelope
    } catch {
      return
    }
    handlers.deliver(envelope.m, envelope.at)
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({ connectionString: options.connectionString, connectionTimeoutMillis: 2000, keepAlive: true })
    c.on('notification', (n) => { if (n.channel === options.channel) deliver(n.payload) })
    c.on('error', (err) => {
      options.onError?.(err)
      lost(c)
    })
    c.on('end', () => lost(c))
    await c.connect()
    await c.query(`LISTEN ${options.channel}`)
    client = c
    if (connectedOnce) options.onResync?.()
    connectedOnce = true
  }

  function lost(c: pg.Client) {
    if (client !== c) return
    client = undefined
    c.removeAllListeners('end')
    if (!closed) schedule()
  }

  function schedule() {
    if (timer || closed) return
    timer = setTimeout(() => {
      timer = undefined
      connect().catch((err: unknown) => {
        options.onError?.(err)
        schedule()
      })
    }, options.reconnectMs ?? 500)
    timer.unref()
  }

  return {
    kind: 'postgres',
    async publish(message: Invalidation) {
      const text = JSON.stringify({ m: message, at: Date.now() } satisfies Envelope)
      await options.query('SELECT pg_notify($1, $2)', [options.channel, text])
      // This instance drops its entries now, before the caller answers; the echo of the notification that
      // follows is harmless.
      deliver(text)
    },
    subscribe: handlers.add,
    applyHere: (message) => handlers.deliver(message, Date.now()),
    start: connect,
    async close() {
      closed = true
      if (timer) clearTimeout(timer)
      const c = client
      client = undefined
      await c?.end().catch(() => {})
    },
  }
}
