import type { IncomingMessage } from 'node:http'

/**
 * Stage 5: the headers that go upstream. Everything hop-by-hop (RFC 9110 §7.6.1, plus what `Connection`
 * names) and every header of the reserved families is dropped, compared case-insensitively with `_` read as
 * `-`, so no client can smuggle an identity past the gateway in any spelling. Method override headers are
 * dropped the same way: the method the route admitted is the method the upstream sees. The client's credential is not
 * forwarded unless the route asks for it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'host', 'expect', 'http2-settings'])
const RESERVED_EXACT = new Set(['x-user-id', 'x-username', 'x-auth-method', 'x-api-key-id', 'x-request-id', 'forwarded', 'x-real-ip'])
// Method override headers would let a request the route admitted as one method act as another upstream.
const METHOD_OVERRIDE = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])
const RESERVED_PREFIXES = ['x-keygate-', 'x-forwarded-']
// W3C trace context: the gateway is a hop of the trace and sends its own (see trace-context.ts).
const TRACE_CONTEXT = new Set(['traceparent', 'tracestate'])

/**
 * Headers that upstream frameworks and proxies commonly believe (a rewritten URL, the client's address, a user
 * asserted by an authenticating proxy): a client's copy is dropped like a reserved header. `KEYGATE_STRIP_HEADERS`
 * replaces this list; an entry ending in `*` is a prefix.
 */
export const DEFAULT_STRIP_HEADERS: readonly string[] = [
  'x-original-url', 'x-rewrite-url', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'x-real-ip',
  'remote-user', 'x-remote-user', 'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-auth-request-*',
]

/** A compiled strip list: exact names and prefixes, lowercased with `_` read as `-`. */
export interface StripList { readonly id: string; readonly exact: ReadonlySet<string>; readonly prefixes: readonly string[] }

const canonical = (name: string) => name.trim().toLowerCase().replaceAll('_', '-')

export function stripList(names: readonly string[] = DEFAULT_STRIP_HEADERS): StripList {
  const entries = names.map(canonical).filter(Boolean)
  return {
    id: entries.join(','),
    exact: new Set(entries.filter((e) => !e.endsWith('*'))),
    prefixes: entries.filter((e) => e.endsWith('*')).map((e) => e.slice(0, -1)),
  }
}

const DEFAULT_STRIP = stripList()

export function isReservedHeader(name: string, identityHeader: string, strip: StripList = DEFAULT_STRIP): boolean {
  const n = canonical(name)
  return n === identityHeader || RESERVED_EXACT.has(n) || METHOD_OVERRIDE.has(n) || RESERVED_PREFIXES.some((p) => n.startsWith(p))
    || strip.exact.has(n) || strip.prefixes.some((p) => n.startsWith(p))
}

export interface SanitizeOptions {
  identityHeader: string
  forwardAuthorization: boolean
  /** Client headers dropped besides the reserved families (default: `DEFAULT_STRIP_HEADERS`). */
  strip?: StripList
}

/** A raw header name, lowercased, and whether it is hop-by-hop or reserved (never forwarded). */
interface NameVerdict { name: string; drop: boolean }

// Clients send the same few header names over and over: the verdict on each spelling is remembered (per
// identity header name and strip list, a bounded map) instead of lowercasing and matching every name of every request.
type Verdicts = Map<string, NameVerdict>
const verdicts = new Map<string, Verdicts>()
// The policy of the previous call: a gateway has one, so its map is found without building its key.
let lastIdentity: string | undefined
let lastStrip: StripList | undefined
let lastVerdicts: Verdicts | undefined
function verdictsFor(identityHeader: string, strip: StripList): Verdicts {
  if (identityHeader === lastIdentity && strip === lastStrip) return lastVerdicts!
  const policy = `${identityHeader}|${strip.id}`
  let cache = verdicts.get(policy)
  if (!cache) {
    if (verdicts.size >= 16) verdicts.clear()
    verdicts.set(policy, (cache = new Map()))
  }
  lastIdentity = identityHeader
  lastStrip = strip
  lastVerdicts = cache
  return cache
}
function verdictOf(cache: Verdicts, rawName: string, identityHeader: string, strip: StripList): NameVerdict {
  let v = cache.get(rawName)
  if (v === undefined) {
    const name = rawName.toLowerCase()
    v = { name, drop: HOP_BY_HOP.has(name) || TRACE_CONTEXT.has(name) || isReservedHeader(name, identityHeader, strip) }
    if (cache.size >= 4096) cache.clear()
    cache.set(rawName, v)
  }
  return v
}

/** Returns the inbound headers that may be forwarded, as a flat [name, value, …] list (duplicates kept). */
export function sanitizeRequestHeaders(req: IncomingMessage, options: SanitizeOptions): string[] {
  const connection = req.headers.connection
  const connectionTokens = connection ? new Set(connection.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean)) : undefined
  const out: string[] = []
  const raw = req.rawHeaders
  const strip = options.strip ?? DEFAULT_STRIP
  const cache = verdictsFor(options.identityHeader, strip)
  for (let i = 0; i < raw.length; i += 2) {
    const { name, drop } = verdictOf(cache, raw[i]!, options.identityHeader, strip)
    if (drop || connectionTokens?.has(name)) continue
    if (name === 'authorization' && !options.forwardAuthorization) continue
    out.push(name, raw[i + 1]!)
  }
  return out
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate'])

/** A response header name as the upstream spelled it, lowercased, and whether it is hop-by-hop. */
interface ResponseName { name: string; hop: boolean }
// Upstreams send the same few names on every response: each spelling's verdict is remembered (a bounded map).
const responseNames = new Map<string, ResponseName>()
function responseNameOf(raw: string): ResponseName {
  let v = responseNames.get(raw)
  if (v === undefined) {
    const name = raw.toLowerCase()
    v = { name, hop: RESPONSE_HOP_BY_HOP.has(name) }
    if (responseNames.size >= 1024) responseNames.clear()
    responseNames.set(raw, v)
  }
  return v
}

// An upstream sends the same names in the same order on every answer: the name last seen at each position is
// kept with its verdict (its bytes copied), so a name is usually recognised by comparing a few bytes, without
// making a string of it and hashing that (a tenth of the time). Another name at a position takes its place.
const MAX_POSITIONS = 64
const byPosition: Array<{ bytes: Buffer; verdict: ResponseName } | undefined> = []
function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
function responseNameAt(position: number, raw: Buffer | string): ResponseName {
  if (typeof raw === 'string') return responseNameOf(raw)
  const last = byPosition[position]
  if (last !== undefined && sameBytes(raw, last.bytes)) return last.verdict
  const verdict = responseNameOf(raw.toString('latin1'))
  if (position < MAX_POSITIONS) byPosition[position] = { bytes: Buffer.from(raw), verdict }
  return verdict
}

/**
 * Upstream response headers minus hop-by-hop ones, from undici's raw list (`[name, value, …]`, Buffers or
 * strings) to a flat `[name, value, …]` list for `writeHead`: names lowercased, values read as latin1 (as
 * undici parses them), order and duplicates (`set-cookie`) kept. `eventStream`: the content type is
 * `text/event-stream`, whose events must reach the client as they are written.
 */
export function sanitizeResponseHeaders(raw: ReadonlyArray<Buffer | string>): { headers: string[]; eventStream: boolean } {
  const headers: string[] = []
  let eventStream = false
  // Names the Connection header lists, when one of them is not hop-by-hop already (`keep-alive` is the usual one).
  let named: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const { name, hop } = responseNameAt(i >> 1, raw[i]!)
    if (hop) {
      if (name === 'connection') {
        for (const t of raw[i + 1]!.toString('latin1').split(',')) {
          const token = t.trim().toLowerCase()
          if (!RESPONSE_HOP_BY_HOP.has(token)) (named ??= []).push(token)
        }
      }
      continue
    }
    const value = raw[i + 1]!.toString('latin1')
    if (name === 'content-type' && value.startsWith('text/event-stream')) eventStream = true
    headers.push(name, value)
  }
  if (named === undefined) return { headers, eventStream }
  // Rare: the Connection header names an end-to-end header, which is dropped wherever it stands.
  const kept: string[] = []
  eventStream = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    if (named.includes(name)) continue
    if (name === 'content-type' && headers[i + 1]!.startsWith('text/event-stream')) eventStream = true
    kept.push(name, headers[i + 1]!)
  }
  return { headers: kept, eventStream }
}
