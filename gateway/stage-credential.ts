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
// Optional whitespace around a field value is SP and HTAB only (RFC 9110 §5.6.3): String.prototype.trim()
// would also strip U+00A0, which a latin1 header value can carry (byte 0xA0) and which is part of the value.
// Adjacent parts match disjoint classes, so the pattern never backtracks.
const BEARER = /^[ \t]*Bearer +([^ \t]+)[ \t]*$/i

export function extractCredential(req: IncomingMessage): CredentialResult {
  const header = req.headers.authorization
  if (header === undefined) return { kind: 'none' }
  // Node joins nothing for Authorization: a duplicate shows only in rawHeaders.
  let count = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.length === 13 && req.rawHeaders[i]!.toLowerCase() === 'authorization') count++
  if (count !== 1) return { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }
  const match = BEARER.exec(header)
  if (!match) return { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }
  const value = match[1]!
  if (value.length > MAX_CREDENTIAL || !TOKEN68.test(value)) return { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }
  return { kind: 'bearer', value }
}
