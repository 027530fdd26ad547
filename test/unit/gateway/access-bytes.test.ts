import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { exchangeBytes } from '../../../gateway/access-bytes.ts'

/** A connected pair on loopback: `a` writes, `b` is the peer (paused: it reads nothing until resumed). */
async function pair(t: { teardown(fn: () => void): void }): Promise<{ a: Socket; b: Socket }> {
  const server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const accepted = once(server, 'connection')
  const a = connect(port, '127.0.0.1')
  await once(a, 'connect')
  const [b] = (await accepted) as [Socket]
  t.teardown(() => { a.destroy(); b.destroy(); server.close() })
  return { a, b }
}

t.test('bytes out are counted per exchange, whether or not the socket still buffers some of them', async (t) => {
  const { a, b } = await pair(t)
  await new Promise<void>((r) => a.write(Buffer.alloc(1000), () => r()))
  t.equal(exchangeBytes(a).out, 1000, 'all handed to the kernel')
  // More than the kernel takes while the peer reads nothing: part of it stays in the socket's buffer.
  const big = Buffer.alloc(64 * 1024 * 1024)
  a.write(big)
  t.ok(a.writableLength > 0, 'some bytes are still buffered')
  t.equal(exchangeBytes(a).out, big.length, 'buffered bytes count as written, as socket.bytesWritten counts them')
  t.equal(exchangeBytes(a).out, 0, 'nothing since the previous exchange')
  b.resume()
  await once(a, 'drain')
  t.equal(exchangeBytes(a).out, 0)
})
