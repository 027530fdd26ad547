import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A TCP relay in front of a real server, so a test can cut a dependency off (and bring it back) without
 * stopping the shared server other tests use.
 */
export async function tcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>()
  let up = true
  const server = createServer((client) => {
    if (!up) return client.destroy()
    const upstream = connect(target.port, target.host)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    /** Refuses new connections and cuts the open ones. */
    cut() {
      up = false
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
    restore() { up = true },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }),
  }
}
