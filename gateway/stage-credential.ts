import type { IncomingMessage } from 'node:http'

/**
 * Stage 2: the credential, read from `Authorization: Bearer <credential>` only. The scheme is
 * case-insensitive (RFC 9110); a second Authorization header, another scheme or an empty or oversized
 * value is a malformed request (400), not a guess.
 */
export type CredentialResult =
  | { kind: 'none' }
  | { kind: 'bearer'; value: string }
  | { kind: 'malformed'; code: 'AUTH_HEADER_INVALID' }

const MAX_CREDENTIAL = 8192
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/
const SP = 32
const HTAB = 9
const BEARER = [98, 101, 97, 114, 101, 114] // "bearer"

/**
 * The credential of an `Authorization` value shaped `[ \t]*Bearer +<credential>[ \t]*` (the scheme in any ASCII
 * case; the credential runs to the next SP or HTAB), else undefined. Optional whitespace around a field value is
 * SP and HTAB only (RFC 9110 §5.6.3): String.prototype.trim() would also strip U+00A0, which a latin1 header
 * value can carry (byte 0xA0) and which is part of the value. One pass over the character codes, as every
 * request with a credential asks it.
 */
export function bearerCredential(header: string): string | undefined {
  const n = header.length
  let i = 0
  while (i < n && (header.charCodeAt(i) === SP || header.charCodeAt(i) === HTAB)) i++
  if (n - i < 8) return undefined
  // ASCII letters only: a code ORed with 0x20 equals a lowercase letter's code only for that letter in either case.
  for (let k = 0; k < 6; k++) if ((header.charCodeAt(i + k) | 0x20) !== BEARER[k]) return undefined
  i += 6
  if (header.charCodeAt(i) !== SP) return undefined
  while (header.charCodeAt(i) === SP) i++
  const start = i
  while (i < n && header.charCodeAt(i) !== SP && header.charCodeAt(i) !== HTAB) i++
  if (i === start) return undefined
  const end = i
  while (i < n && (header.charCodeAt(i) === SP || header.charCodeAt(i) === HTAB)) i++
  return i === n ? header.slice(start, end) : undefined
}

export function extractCredential(req: IncomingMessage): CredentialResult {
  const header = req.headers.authorization
  if (header === undefined) return { kind: 'none' }
  // Node joins nothing for Authorization: a duplicate shows only in rawHeaders.
  let count = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.length === 13 && req.rawHeaders[i]!.toLowerCase() === 'authorization') count++
  if (count !== 1) return { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }
  const value = bearerCredential(header)
  if (value === undefined || value.length > MAX_CREDENTIAL || !TOKEN68.test(value)) return { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }
  return { kind: 'bearer', value }
}
