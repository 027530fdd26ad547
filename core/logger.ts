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
  /**
   * The writer of lines that always carry the same message and field names (the access line): `write(values)`
   * writes what `info(msg, fields)` would for the fields `keys[i]: values[i]` (undefined values left out, the
   * line scrubbed), with the JSON of every name made once instead of per line.
   */
  template(level: Exclude<LogLevel, 'silent'>, msg: string, keys: readonly string[]): LineWriter
}

/** Writes one line of a `template`: the values in the order of its keys. */
export type LineWriter = (values: ReadonlyArray<LogFields[string]>) => void

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }
const SECRETISH = /\b(sk_[a-z0-9]+_[0-9A-Za-z]{8,}|rt_[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)/g

/** Masks anything that looks like a credential. */
export function scrub(text: string): string {
  return text.includes('sk_') || text.includes('eyJ') || text.includes('rt_') ? text.replace(SECRETISH, '[redacted]') : text
}

/**
 * The default destination: stdout, written in batches: lines are encoded into a buffer as they come and the buffer is
 * written at most every `FLUSH_MS` milliseconds (at once when the next line would not fit). A busy gateway logs one
 * access line per request; one write per line was one system call per request, and one per event-loop turn still
 * one for every few requests. Lines still pending when the process exits are written then (stdout to a file, a pipe
 * or a terminal is synchronous on Linux).
 */
export const FLUSH_MS = 10
const BATCH_BYTES = 65536
function batchedStdout(): (line: string) => void {
  let buf = Buffer.allocUnsafe(BATCH_BYTES)
  let used = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (used === 0) return
    const out = buf.subarray(0, used)
    used = 0
    process.stdout.write(out)
    // Written through (a file, a pipe or a terminal on Linux), the buffer is free again; still queued (an
    // asynchronous pipe elsewhere), it is the stream's until then and the next lines go to a new one.
    if (process.stdout.writableLength > 0) buf = Buffer.allocUnsafe(BATCH_BYTES)
  }
  process.once('exit', flush)
  return (line) => {
    // As UTF-8 a UTF-16 unit takes at most 3 bytes; the line feed one more.
    if (used + line.length * 3 + 1 > BATCH_BYTES) {
      flush()
      if (line.length * 3 + 1 > BATCH_BYTES) return void process.stdout.write(line + '\n')
    }
    used += buf.write(line, used)
    buf[used++] = 10
    if (!scheduled) {
      scheduled = true
      setTimeout(flush, FLUSH_MS).unref()
    }
  }
}

// JSON.stringify of a fresh object per line (with the base fields spread into it) was the logger's main
// cost; a line is now concatenated from pre-serialised parts, with the same output.
const RESERVED = new Set(['time', 'level', 'msg'])
const keyParts = new Map<string, string>()
const keyPart = (key: string) => {
  let part = keyParts.get(key)
  if (part === undefined) {
    part = `,${JSON.stringify(key)}:`
    if (keyParts.size < 1000) keyParts.set(key, part)
  }
  return part
}
// What JSON.stringify escapes in a string; without any, the string is its own JSON between quotes (the
// common case: ids, names, codes), several times cheaper than JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/
/**
 * A number's JSON (what `JSON.stringify` writes). A positive value with at most two decimals, such as the access
 * line's milliseconds, is written from its hundredths in integer arithmetic: V8's double-to-string took about three
 * times as long.
 */
export function numberJson(v: number): string {
  if (!Number.isFinite(v)) return 'null'
  if (Number.isInteger(v) || !(v > 0 && v < 1e13)) return String(v)
  const h = Math.round(v * 100)
  // Only when v is the double nearest to h / 100 is its shortest form the decimal h / 100.
  if (h / 100 !== v) return String(v)
  const whole = Math.floor(h / 100)
  const cents = h - whole * 100
  return cents % 10 === 0 ? `${whole}.${cents / 10}` : `${whole}.${cents < 10 ? '0' : ''}${cents}`
}

const valuePart = (v: LogFields[string]): string | undefined => {
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`
  if (typeof v === 'number') return numberJson(v)
  if (v === undefined) return undefined
  return JSON.stringify(v)
}

// A string value without any of these is written as it is, quoted: nothing to escape, nothing to mask.
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]|sk_|eyJ|rt_/
/** A value's JSON, scrubbed (what `scrub` does to it inside a line: a match never crosses the quotes around it). */
export const scrubbedPart = (v: LogFields[string]): string | undefined => {
  if (typeof v === 'string') return NEEDS_CARE.test(v) ? scrub(JSON.stringify(v)) : `"${v}"`
  if (typeof v === 'number') return numberJson(v)
  if (v === undefined) return undefined
  return scrub(JSON.stringify(v))
}

let isoMs = 0
let iso = ''
let isoSec = Number.NaN
let isoPrefix = ''
/** The current time as ISO 8601: formatted in full once per second, the milliseconds appended in between. */
function isoNow(): string {
  const now = Date.now()
  if (now !== isoMs) {
    isoMs = now
    const sec = Math.floor(now / 1000)
    if (sec !== isoSec) {
      isoSec = sec
      const full = new Date(sec * 1000).toISOString()
      isoPrefix = full.slice(0, -4)
    }
    const ms = now - sec * 1000
    iso = `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
  }
  return iso
}

export function jsonLogger(options: { level: LogLevel; write?: (line: string) => void; base?: LogFields }): Logger {
  const write = options.write ?? batchedStdout()
  const min = RANK[options.level]
  const make = (base: LogFields): Logger => {
    let baseJson = ''
    for (const k of Object.keys(base)) {
      const v = valuePart(base[k])
      if (v !== undefined && !RESERVED.has(k)) baseJson += keyPart(k) + v
    }
    // Fields that repeat a base or reserved key take that key's place: the general (slower) path keeps that.
    const baseOverlaps = Object.keys(base).some((k) => RESERVED.has(k))
    const overlaps = (fields: LogFields | undefined) => {
      if (baseOverlaps) return true
      for (const k in fields) if (RESERVED.has(k) || Object.hasOwn(base, k)) return true
      return false
    }
    const emit = (level: Exclude<LogLevel, 'silent'>) => {
      const head = `,"level":${JSON.stringify(level)},"msg":`
      return (msg: string, fields?: LogFields) => {
        if (RANK[level] < min) return
        if (overlaps(fields)) {
          write(scrub(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })))
          return
        }
        let line = `{"time":"${isoNow()}"${head}${valuePart(msg)}${baseJson}`
        if (fields) {
          for (const k in fields) {
            const v = valuePart(fields[k])
            if (v !== undefined) line += keyPart(k) + v
          }
        }
        write(scrub(line + '}'))
      }
    }
    const emitters = { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') }
    const template = (level: Exclude<LogLevel, 'silent'>, msg: string, keys: readonly string[]): LineWriter => {
      if (RANK[level] < min) return () => {}
      if (new Set(keys).size !== keys.length) throw new Error(`a log template names a field twice: ${keys.join(', ')}`)
      // A name that repeats a base or reserved key takes that key's place: the general path keeps that.
      if (baseOverlaps || keys.some((k) => RESERVED.has(k) || Object.hasOwn(base, k))) {
        const general = emitters[level]
        return (values) => {
          const fields: LogFields = {}
          for (let i = 0; i < keys.length; i++) fields[keys[i]!] = values[i]
          general(msg, fields)
        }
      }
      const head = `","level":${JSON.stringify(level)},"msg":${valuePart(msg)}${baseJson}`
      const parts = keys.map((k) => `,${JSON.stringify(k)}:`)
      // A secret's match never crosses a quote, so scrubbing each value's JSON is scrubbing the line; the fixed
      // parts are checked once. Any of them with something to mask: the whole line is scrubbed, as `info` does.
      if (scrub(head) !== head || parts.some((p) => scrub(p) !== p)) {
        return (values) => {
          let line = `{"time":"${isoNow()}${head}`
          for (let i = 0; i < parts.length; i++) {
            const v = valuePart(values[i])
            if (v !== undefined) line += parts[i]! + v
          }
          write(scrub(line + '}'))
        }
      }
      return (values) => {
        let line = `{"time":"${isoNow()}${head}`
        for (let i = 0; i < parts.length; i++) {
          const v = scrubbedPart(values[i])
          if (v !== undefined) line += parts[i]! + v
        }
        write(line + '}')
      }
    }
    return { ...emitters, child: (f) => make({ ...base, ...f }), template }
  }
  return make(options.base ?? {})
}

export const silentLogger: Logger = jsonLogger({ level: 'silent', write: () => {} })
