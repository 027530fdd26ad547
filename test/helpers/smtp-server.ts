import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

export interface DeliveredMail { to: string[]; raw: string }

/**
 * A real SMTP server (the `smtp-server` package) on a free local port, keeping every message delivered to it.
 * `url` is what KEYGATE_SMTP_URL takes.
 */
export async function mailbox() {
  const delivered: DeliveredMail[] = []
  const waiters: Array<() => void> = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        delivered.push({ to: (session.envelope.rcptTo || []).map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') })
        waiters.splice(0).forEach((w) => w())
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.server.address() as AddressInfo).port
  return {
    url: `smtp://127.0.0.1:${port}`,
    delivered,
    /** The next message to `address` not yet returned by this call (waits up to `ms`). */
    async nextTo(address: string, ms = 5000): Promise<DeliveredMail> {
      const deadline = Date.now() + ms
      for (;;) {
        const i = delivered.findIndex((m) => m.to.includes(address))
        if (i !== -1) return delivered.splice(i, 1)[0]!
        if (Date.now() > deadline) throw new Error(`no mail to ${address} within ${ms} ms`)
        await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 100) })
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** The reset token a password reset mail carries. */
export function resetTokenIn(mail: DeliveredMail): string {
  // The body may be quoted-printable: soft line breaks and =XX escapes.
  const body = mail.raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  const m = /Reset token: (prt_[A-Za-z0-9_-]+)/.exec(body)
  if (!m) throw new Error('the mail holds no reset token')
  return m[1]!
}
