import type { IncomingMessage } from 'node:http'

/**
 * Stage 5: the headers that go upstream. Everything hop-by-hop (RFC 9110 §7.6.1, plus what `Connection`
 * names) and every header of the reserved families is dropped, compared case-insensitively with `_` read as
 * `-`, so no client can smuggle an identity past the gateway in any spelling. The client's credential is not
 * forwarded unless the route asks for it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'host', 'expect', 'http2-settings'])
const RESERVED_EXACT = new Set(['x-user-id', 'x-username', 'x-auth-method', 'x-api-key-id', 'x-request-id', 'forwarded', 'x-real-ip'])
const RESERVED_PREFIXES = ['x-keygate-', 'x-forwarded-']

export function isReservedHeader(name: string, identityHeader: string): boolean {
  const n = name.trim().toLowerCase().replaceAll('_', '-')
  return n === identityHeader || RESERVED_EXACT.has(n) || RESERVED_PREFIXES.some((p) => n.startsWith(p))
}

export interface SanitizeOptions {
  identityHeader: string
  forwardAuthorization: boolean
}

/** Returns the inbound headers that may be forwarded, as a flat [name, value, …] list (duplicates kept). */
export function sanitizeRequestHeaders(req: IncomingMessage, options: SanitizeOptions): string[] {
  const connectionTokens = new Set((req.headers.connection ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
  const out: string[] = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue
    if (name === 'authorization' && !options.forwardAuthorization) continue
    if (isReservedHeader(name, options.identityHeader)) continue
    out.push(name, raw[i + 1]!)
  }
  return out
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate'])

/** Upstream response headers minus hop-by-hop ones. */
export function sanitizeResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connection = headers.connection
  const named = new Set((Array.isArray(connection) ? connection.join(',') : connection ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || RESPONSE_HOP_BY_HOP.has(k) || named.has(k)) continue
    out[k] = v
  }
  return out
}
