import nodemailer from 'nodemailer'

/** Sends one plain-text message. */
export interface Mailer {
  send(message: { to: string; subject: string; text: string }): Promise<void>
}

/**
 * A mailer over SMTP (nodemailer). `url` is `smtp://user:pass@host:port` or `smtps://…`; `from` the sender
 * address. Nothing connects until the first message.
 */
export function smtpMailer(url: string, from: string): Mailer & { close(): void } {
  const transport = nodemailer.createTransport(url)
  return {
    async send(message) {
      await transport.sendMail({ from, ...message })
    },
    close: () => transport.close(),
  }
}
