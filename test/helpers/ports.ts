import { createServer, type AddressInfo } from 'node:net'

/**
 * A loopback port nobody listens on right now, for processes that must know each other's address before they
 * start (a gateway's admin URL, the admin API's key set URL). Another process could take it in between; on
 * a test machine that is rare enough.
 */
export function freePort(): Promise<number> {
  const s = createServer()
  return new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}
