import { connect } from 'node:net'

/**
 * Writes `bytes` to 127.0.0.1:`port` exactly as given (header case, underscores, duplicates, broken framing)
 * and resolves with everything the server sent until it closed the connection (or `timeoutMs` passed, then
 * `timedOut` is true and the socket is destroyed).
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<{ response: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); resolve({ response: Buffer.concat(chunks).toString('latin1'), timedOut: true }) }, timeoutMs)
    socket.on('data', (d) => chunks.push(d))
    socket.on('close', () => { clearTimeout(timer); resolve({ response: Buffer.concat(chunks).toString('latin1'), timedOut: false }) })
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET') { clearTimeout(timer); reject(err) } })
  })
}

/** A request written line by line (`Connection: close` added) and its raw response. */
export async function rawRequest(port: number, lines: string[], body = ''): Promise<string> {
  return (await rawExchange(port, [...lines, 'Connection: close'].join('\r\n') + '\r\n\r\n' + body)).response
}

/** Status code and problem `code` of a raw HTTP/1.1 response (the first one on the connection). */
export function statusAndCode(response: string): { status: number; code: string | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0)
  const code = /"code":"([A-Z_]+)"/.exec(response)?.[1]
  return { status, code }
}

/** The secrets among `secrets` that occur in any of `lines` (each reported once, by its first characters only). */
export function leakedSecrets(lines: readonly string[], secrets: readonly string[]): string[] {
  const text = lines.join('\n')
  return secrets.filter((s) => s.length >= 8 && text.includes(s)).map((s) => `${s.slice(0, 6)}…`)
}
