/**
 * JSON logs, one object per line. Callers pass ids, never secrets; as a second line of defence anything
 * shaped like an API key, a JWT or a refresh token is masked before it is written.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFields = Record<string, string | number | boolean | null | undefined | readonly string[]>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(fields: LogFields): Logger
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }
const SECRETISH = /\b(sk_[a-z0-9]+_[0-9A-Za-z]{8,}|rt_[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)/g

/** Masks anything that looks like a credential. */
export function scrub(text: string): string {
  return text.includes('sk_') || text.includes('eyJ') || text.includes('rt_') ? text.replace(SECRETISH, '[redacted]') : text
}

export function jsonLogger(options: { level: LogLevel; write?: (line: string) => void; base?: LogFields }): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'))
  const min = RANK[options.level]
  const make = (base: LogFields): Logger => {
    const emit = (level: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: LogFields) => {
      if (RANK[level] < min) return
      write(scrub(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })))
    }
    return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error'), child: (f) => make({ ...base, ...f }) }
  }
  return make(options.base ?? {})
}

export const silentLogger: Logger = jsonLogger({ level: 'silent', write: () => {} })
