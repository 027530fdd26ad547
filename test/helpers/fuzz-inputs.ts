import { createHmac } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { base62EncodeInt } from '../../core/base62.ts'

/**
 * Inputs for the gateway fuzz test (test/adversarial/fuzz.test.ts). Every case is generated from the run's seed
 * and its own index, so one case can be generated again alone. Each case carries the outcomes the README allows
 * for it, written `"<status> <code>"` for a problem response and `"200"` for an answer that went through; an
 * answer without a problem body reads `"<status> bare"`, which no case allows.
 */

// --- seeded randomness -----------------------------------------------------------------------------------

/** mulberry32: a tiny, fast 32-bit PRNG; the same seed gives the same sequence on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export class Rng {
  constructor(private readonly next: () => number) {}
  float(): number { return this.next() }
  int(n: number): number { return Math.floor(this.next() * n) }
  between(lo: number, hi: number): number { return lo + this.int(hi - lo + 1) }
  chance(p: number): boolean { return this.next() < p }
  pick<T>(items: ArrayLike<T>): T { return items[this.int(items.length)]! }
  string(alphabet: string, length: number): string {
    let s = ''
    for (let i = 0; i < length; i++) s += alphabet[this.int(alphabet.length)]
    return s
  }
  /** One of `weighted`'s values, each as likely as its weight. */
  weighted<T>(weighted: ReadonlyArray<readonly [number, T]>): T {
    let total = 0
    for (const [w] of weighted) total += w
    let x = this.float() * total
    for (const [w, v] of weighted) if ((x -= w) < 0) return v
    return weighted[weighted.length - 1]![1]
  }
}

/** The generator of case `index` of the run with `seed` (independent of every other case). */
export function caseRng(seed: number, index: number): Rng {
  let h = (seed ^ 0x9e3779b9) >>> 0
  h = Math.imul(h ^ (index + 0x7f4a7c15), 0x85ebca6b) >>> 0
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  h ^= h >>> 16
  return new Rng(mulberry32(h))
}

// --- outcomes the README documents -----------------------------------------------------------------------

export const OK = ['200'] as const
export const NO_CREDENTIAL = ['401 AUTH_REQUIRED']
/**
 * A credential present but not accepted: malformed header (400), refused credential (401), or, once this
 * address has sent KEYGATE_UNKNOWN_KEY_LOOKUPS unknown keys, an uncached key not looked up (429).
 */
export const CREDENTIAL_REFUSED = ['400 AUTH_HEADER_INVALID', '401 KEY_MALFORMED', '401 KEY_UNKNOWN', '401 TOKEN_INVALID', '429 KEY_LOOKUPS_LIMITED']
export const PATH_REFUSED = ['400 PATH_INVALID']
export const NO_ROUTE = ['404 ROUTE_NOT_FOUND']
/** What the admin API answers a GET with an accepted credential. */
export const ADMIN_ANSWERS = ['200', '403 JWT_REQUIRED', '403 NOT_SUPERUSER', '404 NOT_FOUND', '422 VALIDATION_FAILED']
export const BODY_REFUSED = ['413 BODY_TOO_LARGE']
/** Node's parser refused the bytes: the gateway's problem answer, never Node's bare one. */
export const PARSER_REFUSED = ['400 REQUEST_MALFORMED']
export const TOO_LARGE = ['431 HEADERS_TOO_LARGE']

export type RouteKind = 'echo' | 'public' | 'small' | 'admin' | 'none' | 'own'
export type CredentialClass = 'none' | 'valid' | 'invalid'

/** The fuzz gateway's routes beside the admin API's (for `echoRouteFile`, whose `echo` is the local upstream). */
export const FUZZ_ROUTES = `
  - { name: echo, prefix: /echo, upstream: echo }
  - { name: echo-public, prefix: /public, upstream: echo, auth: public }
  - { name: small, prefix: /small, upstream: echo, auth: public, max_body_bytes: 1024 }
`

/** The documented outcomes of a well-formed request to `route` with a credential of class `credential`. */
export function routeOutcomes(route: RouteKind, credential: CredentialClass): readonly string[] {
  switch (route) {
    case 'public':
    case 'small':
      return OK
    case 'echo':
      return credential === 'valid' ? OK : credential === 'none' ? NO_CREDENTIAL : CREDENTIAL_REFUSED
    case 'admin':
      return credential === 'valid' ? ADMIN_ANSWERS : credential === 'none' ? NO_CREDENTIAL : CREDENTIAL_REFUSED
    case 'none':
      return NO_ROUTE
    case 'own':
      return [...OK, ...NO_ROUTE]
  }
}

/**
 * The README's rule for the header: exactly one `Authorization` whose value, once HTTP's optional whitespace
 * (space, tab) around it is dropped, is `Bearer` (any case), one or more spaces and the credential.
 */
export function credentialClass(values: readonly string[], valid: readonly string[]): CredentialClass {
  if (values.length === 0) return 'none'
  if (values.length > 1) return 'invalid'
  const m = /^bearer +(\S+)$/i.exec(values[0]!.replace(/^[ \t]+|[ \t]+$/g, ''))
  return m && valid.includes(m[1]!) ? 'valid' : 'invalid'
}

// --- character sets --------------------------------------------------------------------------------------

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const DIGITS = '0123456789'
const BASE62 = DIGITS + UPPER + LOWER
const BASE64URL = BASE62 + '-_'
const TOKEN68 = BASE64URL + '.~+/='
const UNRESERVED = BASE62 + '-._~'
let printable = ''
for (let c = 0x20; c < 0x7f; c++) printable += String.fromCharCode(c)
const PRINTABLE = printable
let high = ''
for (let c = 0x80; c <= 0xff; c++) high += String.fromCharCode(c)
/** Bytes 0x80–0xFF as one latin1 character each: how undici and Node carry obs-text in a header. */
const HIGH = high

/** `text` as UTF-8 bytes, one latin1 character per byte (what a client sends as raw UTF-8). */
export const utf8AsLatin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1')

/** A code point that is valid in UTF-8 (no surrogates), skipping C1 controls and U+FFFD. */
function codePoint(r: Rng): string {
  return String.fromCodePoint(r.weighted([
    [3, r.between(0xa0, 0x7ff)],
    [3, r.between(0x800, 0xd7ff)],
    [1, r.between(0xe000, 0xfffc)],
    [2, r.between(0x10000, 0x10ffff)],
  ]))
}

function randomChar(r: Rng): string {
  return r.weighted([
    [70, () => r.pick(TOKEN68)],
    [20, () => r.pick(PRINTABLE)],
    [5, () => r.pick(HIGH)],
    [5, () => utf8AsLatin1(codePoint(r))],
  ])()
}

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64url')

// --- credential mutations --------------------------------------------------------------------------------

// Case changes of ASCII letters only: `'µ'.toUpperCase()` is U+039C, which no HTTP/1.1 header can carry.
const upper = (s: string) => s.replace(/[a-z]+/g, (m) => m.toUpperCase())
const lower = (s: string) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase())

/** Undici and Node carry a header line of up to 16 kB; ~12 kB values stay below it. */
const MAX_VALUE = 12_000

function mutateOnce(r: Rng, s: string): string {
  const pos = r.int(s.length + 1)
  switch (r.int(10)) {
    case 0: return s.slice(0, pos) + randomChar(r) + s.slice(pos + 1)
    case 1: return s.slice(0, pos) + randomChar(r) + s.slice(pos)
    case 2: return s.slice(0, pos) + s.slice(pos + r.between(1, 3))
    case 3: return s.slice(0, pos) + s.slice(pos, pos + r.between(1, 20)) + s.slice(pos)
    case 4: return s.slice(0, pos)
    case 5: {
      if (r.chance(0.3)) return r.chance(0.5) ? upper(s) : lower(s)
      const c = s[pos] ?? ''
      return s.slice(0, pos) + (c === upper(c) ? lower(c) : upper(c)) + s.slice(pos + 1)
    }
    case 6: {
      const target = r.pick([1000, 4000, 8191, 8192, 8193, MAX_VALUE])
      let out = s || 'A'
      while (out.length < target) out += s || 'A'
      return out.slice(0, target)
    }
    case 7: return s.slice(pos) + s.slice(0, pos)
    case 8: {
      const junk = r.pick(['=', '==', '.', ' ', '\t', ',', ';', '"', "'", '\\', '%20', ' x', '\u00a0'])
      return r.chance(0.5) ? junk + s : s + junk
    }
    default: return s.slice(0, pos) + r.string(r.chance(0.5) ? BASE62 : PRINTABLE, r.between(1, 8)) + s.slice(pos)
  }
}

export function mutate(r: Rng, s: string): string {
  let out = s
  const n = r.weighted([[6, 1], [3, 2], [1, 3]] as const)
  for (let i = 0; i < n; i++) out = mutateOnce(r, out)
  return out.slice(0, MAX_VALUE)
}

function mutateKey(r: Rng, key: string): string {
  const body = key.slice('sk_live_'.length)
  return r.weighted<() => string>([
    [6, () => mutate(r, key)],
    [2, () => r.pick(['sk_test_', 'SK_LIVE_', 'sk_live', 'sk__', 'pk_live_', 'sk_live__', 'sk_Live_', 'sk_', '']) + body],
    // One base62 character changed: same shape, wrong checksum.
    [2, () => { const i = 'sk_live_'.length + r.int(body.length); return key.slice(0, i) + r.pick(BASE62) + key.slice(i + 1) }],
  ])()
}

function mutateJwt(r: Rng, jwt: string): string {
  const [h, p, s] = jwt.split('.') as [string, string, string]
  const garbage = () => r.string(BASE64URL, r.pick([0, 1, 8, 43, 300, 3000]))
  return r.weighted<() => string>([
    [5, () => mutate(r, jwt)],
    [2, () => r.pick([[p, h, s], [h, s, p], [s, p, h], [h, p, p], [h, h, s], [s, s, s], [p, p, p], [h, p, h]]).join('.')],
    [2, () => { const parts = [h, p, s]; parts[r.int(3)] = garbage(); return parts.join('.') }],
    [2, () => r.pick([`${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}.${p}.`, `.${p}.${s}`, `${h}..${s}`, `${jwt}.`, `.${jwt}`, `${jwt}.${garbage()}`, `${h}.${p}.${s}..`, `${h}`, '..', '.'])],
    [1, () => jwt.replaceAll('-', '+').replaceAll('_', '/') + r.pick(['', '=', '=='])],
    [1, () => [h, p, s].map((x) => x + '='.repeat(r.int(3))).join('.')],
    [1, () => { const parts = [h, p, s]; const i = r.int(3); let long = parts[i]!; while (long.length < r.pick([4000, 8200, 11_000])) long += parts[i]; parts[i] = long; return parts.join('.').slice(0, MAX_VALUE) }],
  ])()
}

const WEIRD_VALUES: readonly unknown[] = ['', '0', null, 0, -1, 1e308, true, [], {}, ['HS256'], { $ne: null }, '__proto__', 'constructor', 'toString', '../../../../dev/null', "' OR 1=1 --", '%00', 'x'.repeat(2000)]

function craftedHeader(r: Rng): string {
  const header: Record<string, unknown> = { alg: r.pick(['HS256', 'hs256', 'none', 'None', 'NONE', 'HS384', 'HS512', 'RS256', 'ES256', 'PS256', 'EdDSA', '', 'HS256 ', ' HS256', 'HS256\u0000', null, 256, ['HS256'], { alg: 'HS256' }]) }
  if (r.chance(0.7)) header.typ = r.pick(['JWT', 'jwt', 'at+jwt', '', null, 1])
  if (r.chance(0.5)) header.kid = r.pick(WEIRD_VALUES)
  if (r.chance(0.4)) header.crit = r.pick([['exp'], ['b64'], [], 'exp', [1], null, ['kid', 'kid'], ['x'.repeat(500)]])
  if (r.chance(0.2)) header.b64 = false
  if (r.chance(0.2)) header.jku = r.pick(['http://127.0.0.1:1/jwks', 'file:///etc/passwd', ''])
  if (r.chance(0.2)) header.jwk = r.pick([{ kty: 'oct', k: 'AAAA' }, {}, null])
  if (r.chance(0.1)) header.x5u = 'http://127.0.0.1:1/x5u'
  let json = JSON.stringify(header)
  if (r.chance(0.1)) json = json.replace('{', '{"__proto__":{"alg":"HS256"},')
  if (r.chance(0.05)) json = json.replace('{', '{"alg":"HS256",')
  return json
}

function craftedPayload(r: Rng, claims: Record<string, unknown>): string {
  const payload: Record<string, unknown> = { ...claims }
  const fields = ['sub', 'sid', 'jti', 'iat', 'exp', 'type', 'iss', 'aud', 'nbf']
  for (let i = r.between(1, 3); i > 0; i--) {
    const f = r.pick(fields)
    if (r.chance(0.3)) delete payload[f]
    else payload[f] = r.pick([...WEIRD_VALUES, 'refresh', 'ACCESS', 9_999_999_999, 2 ** 53, '9999999999', 'admin'])
  }
  let json = JSON.stringify(payload)
  if (r.chance(0.1)) json = json.replace('{', '{"__proto__":{"type":"access","admin":true},"constructor":{"prototype":{"x":1}},')
  return json
}

const NON_JSON = ['not json', '[]', 'null', '1', '"str"', '{"alg":"HS256"', '{}', '{"alg":"HS256"}}', '\u0000', '{"alg":"HS256","alg":"none"}', `${'['.repeat(3000)}${']'.repeat(3000)}`, `{"a":${'{"a":'.repeat(1500)}1${'}'.repeat(1500)}}`, '\ufeff{"alg":"HS256"}']

function craftedJwt(r: Rng, jwt: string): string {
  const [, p, s] = jwt.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  const header = b64(r.chance(0.85) ? craftedHeader(r) : r.pick(NON_JSON))
  const payload = r.chance(0.4) ? p : b64(r.chance(0.9) ? craftedPayload(r, claims) : r.pick(NON_JSON))
  const signature = r.weighted<() => string>([
    [3, () => s],
    [2, () => ''],
    [2, () => createHmac('sha256', r.pick(['', 'secret', 'keygate', 'x'.repeat(32), s])).update(`${header}.${payload}`).digest('base64url')],
    [1, () => r.string(BASE64URL, r.pick([1, 43, 86, 500]))],
  ])()
  return `${header}.${payload}.${signature}`.slice(0, MAX_VALUE)
}

/** A well-formed key (prefix, 43 base62 characters, CRC32 checksum) that was never issued. */
export function unknownKey(r: Rng): string {
  const head = 'sk_live_' + r.string(BASE62, 43)
  return head + base62EncodeInt(crc32(head), 6)
}

// --- paths -----------------------------------------------------------------------------------------------

interface PathBase { readonly path: string; readonly route: RouteKind }

const BASES: readonly PathBase[] = [
  { path: '/echo', route: 'echo' }, { path: '/echo', route: 'echo' }, { path: '/public', route: 'public' },
  { path: '/api/v1/auth', route: 'admin' }, { path: '/api/v1/auth/me', route: 'admin' }, { path: '/api/v1/auth/api-keys', route: 'admin' },
  { path: '/api/v1/auth/login', route: 'admin' }, { path: '/api/v1/auth/users', route: 'admin' }, { path: '/api/v1/auth/audit', route: 'admin' },
  { path: '/api/v1/auth/api-key', route: 'admin' }, { path: '/%65cho', route: 'echo' }, { path: '/p%75blic', route: 'public' },
  { path: '/api/v1/%61uth', route: 'admin' }, { path: '/%45cho', route: 'echo' }, { path: '/%2565cho', route: 'none' },
  { path: '/api/v1', route: 'none' }, { path: '/api', route: 'none' }, { path: '/ech', route: 'none' }, { path: '/echoo', route: 'none' },
  { path: '/ECHO', route: 'echo' }, { path: '/Public', route: 'public' }, { path: '/publicx', route: 'none' }, { path: '/api/v1/authx', route: 'none' },
  { path: '/api/v2/auth', route: 'none' }, { path: '/echo.', route: 'none' }, { path: '/echo~', route: 'none' }, { path: '', route: 'none' },
  { path: '/healthz', route: 'own' }, { path: '/readyz', route: 'own' }, { path: '/.well-known/jwks.json', route: 'own' },
]

type Segment = { text: string; poison?: boolean; eightBit?: boolean }

const ENCODED_OTHER = ['%20', '%22', '%23', '%24', '%25', '%26', '%2B', '%2c', '%3A', '%3b', '%3C', '%3D', '%3E', '%3F', '%40', '%5B', '%5D', '%5E', '%60', '%7B', '%7C', '%7D', '%252e', '%252E%252E', '%252f', '%25%32%65', '%255c']
const POISON = [
  '.', '..', '%2e', '%2E', '.%2e', '%2e.', '%2e%2e', '%2E%2e', 'a%2fb', '%2F', '%2f..', '%5c', '%5C', 'a\\b', '\\', '..\\', '%00', 'a%00b',
  '%', '%g0', '%1', '%zz', '%%', '%2', 'a%', '%c0%ae', '%c0%af', '%e0%80%ae', '%ed%a0%80', '%ff', '%c3', '%f8%88%80%80%80', '%u002e', '%01', '%0a', '%0d%0a', '%1f', '%7f', '%c0%80',
]
const SUB_DELIMS = "!$&'()*+,;=:@"

function segment(r: Rng): Segment {
  return r.weighted<() => Segment>([
    [45, () => ({ text: r.string(UNRESERVED, r.between(1, 12)).replace(/^\.{1,2}$/, 'x') })],
    [6, () => ({ text: '' })],
    [7, () => ({ text: [...r.string(BASE62, r.between(1, 6))].map((c) => (r.chance(0.5) ? `%${c.charCodeAt(0).toString(16)}` : c)).join('') })],
    [8, () => ({ text: r.string(BASE62, r.int(3)) + r.pick(ENCODED_OTHER) + r.string(BASE62, r.int(3)) })],
    [6, () => ({ text: encodeURIComponent(codePoint(r) + (r.chance(0.5) ? codePoint(r) : '')) })],
    [3, () => ({ text: r.string(SUB_DELIMS + BASE62, r.between(1, 8)) })],
    [3, () => ({ text: r.string(HIGH.slice(0x21), r.between(1, 3)), eightBit: true })],
    [12, () => ({ text: r.pick(POISON), poison: true })],
    [2, () => ({ text: r.string(UNRESERVED, r.pick([255, 1000, 4000])).replace(/^\.{1,2}$/, 'x') })],
    [3, () => ({ text: r.pick(['...', '.x', 'x.', '.well-known', '~', '-', '_', '..x', 'x..']) })],
  ])()
}

function query(r: Rng): string {
  return '?' + r.weighted<() => string>([
    [5, () => r.string(UNRESERVED + "!$&'()*+,;=:@/?", r.between(0, 40))],
    [2, () => r.pick(['a=1&a=2', 'limit=-1', 'limit=1e9', 'limit=abc', 'user_id=__proto__', 'offset=%zz', 'x=%2e%2e%2f', '../..', '%00', '#frag', 'a=%ff', '__proto__[x]=1', 'limit[]=1', '=', '&&&', '?'])],
    [1, () => r.string(UNRESERVED, r.pick([500, 3000]))],
  ])()
}

export interface PathSpec { path: string; route: RouteKind; poisoned: boolean; eightBit: boolean }

export function fuzzPath(r: Rng): PathSpec {
  const base = r.pick(BASES)
  const segments: Segment[] = []
  for (let n = r.weighted([[3, 0], [4, 1], [3, 2], [2, 3], [1, 5]] as const); n > 0; n--) segments.push(segment(r))
  let path = base.path + segments.map((s) => '/' + s.text).join('')
  if (r.chance(0.1)) path += '/'
  if (path === '') path = '/'
  if (r.chance(0.1)) {
    const slashes = [...path.matchAll(/\//g)].map((m) => m.index)
    const at = r.pick(slashes)
    path = path.slice(0, at) + r.pick(['//', '///', '////']) + path.slice(at + 1)
  }
  if (r.chance(0.3)) path += query(r)
  // A raw `#` anywhere in the target is refused (a fragment has no place in a request target).
  return { path, route: base.route, poisoned: segments.some((s) => s.poison) || path.includes('#'), eightBit: segments.some((s) => s.eightBit) }
}

/** The documented outcomes of `spec` with a credential of class `credential`. */
export function pathOutcomes(spec: PathSpec, credential: CredentialClass): readonly string[] {
  const routed = spec.poisoned ? PATH_REFUSED : routeOutcomes(spec.route, credential)
  // Raw 8-bit bytes are not URI characters: Node's parser refuses them (or, were it lenient, the path stage would).
  return spec.eightBit ? [...routed, ...PATH_REFUSED, ...PARSER_REFUSED] : routed
}

// --- whole requests sent with undici ---------------------------------------------------------------------

export type Kind = 'valid' | 'key-mutation' | 'jwt-mutation' | 'jwt-crafted' | 'scheme' | 'random-bytes' | 'unknown-key' | 'path' | 'body'

export interface FuzzRequest {
  readonly kind: Kind
  readonly method: string
  readonly path: string
  /** The Authorization header values, in order (none, one or several lines). */
  readonly authorization: readonly string[]
  readonly body?: string
  readonly allowed: readonly string[]
  /** The upstream answers when the gateway forwards this request (public or protected echo route). */
  readonly toUpstream: boolean
}

export interface Secrets { readonly key: string; readonly jwt: string }

/** A protected path with nothing unusual in it (the credential is what the case is about). */
function plainEchoPath(r: Rng): string {
  let path = r.pick(['/echo', '/echo/', '/echo/a', '/echo/items/42', '/%65cho/x', '//echo//y'])
  if (r.chance(0.3)) path += '/' + r.string(UNRESERVED, r.between(1, 10)).replace(/^\.{1,2}$/, 'x')
  if (r.chance(0.2)) path += '?q=' + r.string(BASE62, r.between(0, 10))
  return path
}

function schemeVariant(r: Rng, secrets: Secrets): string[] {
  const scheme = r.weighted([[6, r.pick(['Bearer', 'bearer', 'BEARER', 'bEaReR', 'BeArEr'])], [4, r.pick(['Basic', 'Digest', 'Token', 'JWT', 'ApiKey', 'Negotiate', 'Bearer:', 'Bearer=', 'Bearerx', 'Bear', 'Bearer,', '', 'B', 'Bearer Bearer', 'OAuth'])]] as const)
  const separator = r.pick([' ', ' ', '  ', '     ', '\t', ' \t', '\t ', '', ',', ':', '=', '\u00a0'])
  const credential = r.pick([secrets.key, secrets.jwt, secrets.key, secrets.jwt, 'YWxpY2U6cHc=', 'garbage', '', `${secrets.key} ${secrets.key}`, `${secrets.key},${secrets.jwt}`, `${secrets.jwt} extra`, `"${secrets.key}"`, `${secrets.key};`, `<${secrets.jwt}>`])
  const lead = r.pick(['', '', '', ' ', '\t', '  ', ' \t '])
  const trail = r.pick(['', '', '', ' ', '\t', ' \t ', '  '])
  const value = lead + scheme + separator + credential + trail
  return r.weighted<() => string[]>([
    [80, () => [value]],
    [6, () => []],
    [6, () => [value, value]],
    [4, () => [value, `Bearer ${r.pick([secrets.key, secrets.jwt])}`]],
    [2, () => [`${value}, Bearer ${secrets.jwt}`]],
    [2, () => [value, value, value]],
  ])()
}

function randomBytesValue(r: Rng): string {
  const length = r.weighted([[8, r.between(0, 64)], [3, r.between(65, 600)], [1, r.between(601, MAX_VALUE)]] as const)
  const alphabet = r.weighted([[7, PRINTABLE + '\t'], [2, PRINTABLE + HIGH], [1, '']] as const)
  const text = alphabet ? r.string(alphabet, length) : [...Array(Math.min(length, 2000))].map(() => utf8AsLatin1(codePoint(r))).join('').slice(0, MAX_VALUE)
  return r.chance(0.4) ? 'Bearer ' + text : text
}

const NON_ADMIN_METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']

export function fuzzRequest(r: Rng, secrets: Secrets): FuzzRequest {
  const valid = [secrets.key, secrets.jwt]
  const kind = r.weighted<Kind>([[8, 'valid'], [17, 'key-mutation'], [18, 'jwt-mutation'], [9, 'jwt-crafted'], [10, 'scheme'], [10, 'random-bytes'], [2, 'unknown-key'], [24, 'path'], [2, 'body']])
  const onEcho = (authorization: string[]): FuzzRequest => {
    const path = plainEchoPath(r)
    const credential = credentialClass(authorization, valid)
    return { kind, method: 'GET', path, authorization, allowed: routeOutcomes('echo', credential), toUpstream: true }
  }
  switch (kind) {
    case 'valid': {
      const credential = r.pick(valid)
      const value = `${r.pick(['Bearer', 'bearer', 'BEARER'])}${r.pick([' ', ' ', '  '])}${credential}${r.pick(['', '', ' ', '\t'])}`
      if (r.chance(0.15)) {
        const path = r.pick(['/api/v1/auth/me', '/api/v1/auth/api-keys'])
        return { kind, method: 'GET', path, authorization: [value], allowed: OK, toUpstream: false }
      }
      return onEcho([value])
    }
    case 'key-mutation': return onEcho([`Bearer ${mutateKey(r, secrets.key)}`])
    case 'jwt-mutation': return onEcho([`Bearer ${mutateJwt(r, secrets.jwt)}`])
    case 'jwt-crafted': return onEcho([`Bearer ${craftedJwt(r, secrets.jwt)}`])
    case 'scheme': return onEcho(schemeVariant(r, secrets))
    case 'random-bytes': return onEcho([randomBytesValue(r)])
    case 'unknown-key': return onEcho([`Bearer ${unknownKey(r)}`])
    case 'path': {
      const spec = fuzzPath(r)
      const authorization = r.weighted<() => string[]>([
        [35, () => [`Bearer ${secrets.key}`]],
        [25, () => [`Bearer ${secrets.jwt}`]],
        [20, () => []],
        [20, () => [r.pick(['Bearer garbage', 'Basic YWxpY2U6cHc=', `Bearer ${mutateKey(r, secrets.key)}`, `Bearer ${mutateJwt(r, secrets.jwt)}`, ''])]],
      ])()
      const admin = spec.route === 'admin' || spec.route === 'own'
      const method = !admin && r.chance(0.15) ? r.pick(NON_ADMIN_METHODS) : 'GET'
      const allowed = pathOutcomes(spec, credentialClass(authorization, valid))
      return { kind, method, path: spec.path, authorization, allowed, toUpstream: spec.route === 'echo' || spec.route === 'public' }
    }
    case 'body': {
      const size = r.pick([0, 10, 1023, 1024, 1025, 2048, 4096])
      const target = r.pick(['/small', '/small/upload', '/public/upload', '/echo/upload'] as const)
      const body = r.string(PRINTABLE, size)
      const allowed = target.startsWith('/small') && size > 1024 ? BODY_REFUSED : OK
      return { kind, method: r.pick(['POST', 'PUT', 'PATCH']), path: target, authorization: [`Bearer ${r.pick(valid)}`], body, allowed, toUpstream: true }
    }
  }
}

// --- raw requests, for bytes no HTTP client sends --------------------------------------------------------

export type RawKind = 'raw-control-auth' | 'raw-control-path' | 'raw-target' | 'raw-8bit' | 'raw-header-name' | 'raw-oversized'

export interface RawCase {
  readonly kind: RawKind
  readonly bytes: Buffer
  readonly allowed: readonly string[]
  /** A summary for failure reports. */
  readonly label: string
}

const CONTROL_BYTES = [...Array(32).keys()].filter((c) => c !== 9).concat(0x7f).map((c) => String.fromCharCode(c))

function rawRequestBytes(requestLine: string, headers: readonly string[]): Buffer {
  return Buffer.from([requestLine, 'Host: fuzz', ...headers, 'Connection: close', '', ''].join('\r\n'), 'latin1')
}

function insertAt(r: Rng, s: string, piece: string): string {
  const i = r.int(s.length + 1)
  return s.slice(0, i) + piece + s.slice(i)
}

export function fuzzRaw(r: Rng, secrets: Secrets): RawCase {
  const auth = (value: string) => `Authorization: ${value}`
  const validAuth = () => auth(`Bearer ${r.pick([secrets.key, secrets.jwt])}`)
  const kind = r.weighted<RawKind>([[30, 'raw-control-auth'], [20, 'raw-control-path'], [12, 'raw-target'], [20, 'raw-8bit'], [12, 'raw-header-name'], [6, 'raw-oversized']])
  const make = (requestLine: string, headers: string[], allowed: readonly string[], note = '') =>
    ({ kind, bytes: rawRequestBytes(requestLine, headers), allowed, label: `${kind}${note ? ` (${note})` : ''}: ${JSON.stringify([requestLine, ...headers]).slice(0, 400)}` })
  switch (kind) {
    case 'raw-control-auth': {
      const control = r.pick(CONTROL_BYTES)
      const value = insertAt(r, `Bearer ${r.pick([secrets.key, secrets.jwt])}`, control)
      // A credential with a control byte in it is never accepted, whatever the parser makes of the line.
      return make('GET /echo HTTP/1.1', [auth(value)], [...PARSER_REFUSED, ...CREDENTIAL_REFUSED])
    }
    case 'raw-control-path': {
      const control = r.pick([...CONTROL_BYTES, ' '])
      const base = r.pick(['/echo/x', '/public/a/b', '/api/v1/auth/me', '/echo'])
      // Inside the target: a space next to the request line's own spaces is only a wider separator.
      const at = r.between(1, base.length - 1)
      const path = base.slice(0, at) + control + base.slice(at)
      return make(`GET ${path} HTTP/1.1`, [validAuth()], [...PARSER_REFUSED, ...PATH_REFUSED])
    }
    case 'raw-target': {
      const [target, allowed] = r.pick<readonly [string, readonly string[]]>([
        ['*', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['echo', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['http://127.0.0.1/echo', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['http://evil.example/public', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['ftp://x/echo', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['?a=b', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['@evil/echo', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['127.0.0.1:80', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['\\echo', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['%2fecho', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['/echo#frag', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['/echo?x=1#frag', [...PARSER_REFUSED, ...PATH_REFUSED]],
        ['//echo', OK],
        ['/echo?', OK],
        ['/echo?x=\\', [...OK, ...PATH_REFUSED]],
      ])
      return make(`${r.pick(['GET', 'GET', 'OPTIONS', 'DELETE'])} ${target} HTTP/1.1`, [validAuth()], allowed, target)
    }
    case 'raw-8bit': {
      const bytes = r.weighted<() => string>([
        [3, () => r.string(HIGH, r.between(1, 6))],
        [3, () => utf8AsLatin1(codePoint(r) + codePoint(r))],
        [2, () => r.pick(['\xc0\xaf', '\xc0\xae', '\xe0\x80\xae', '\xed\xa0\x80', '\xef\xbf\xbd', '\xff\xfe', '\xc3', '\xc2\x85', '\xe2\x80\xa8'])],
      ])()
      if (r.chance(0.5)) {
        const spec = r.pick<readonly [string, RouteKind]>([['/echo/', 'echo'], ['/public/', 'public'], ['/', 'none'], ['/api/v1/auth/', 'admin']])
        const allowed = [...routeOutcomes(spec[1], 'valid'), ...PATH_REFUSED, ...PARSER_REFUSED]
        return make(`GET ${spec[0]}${bytes} HTTP/1.1`, [validAuth()], allowed, 'path')
      }
      const value = r.pick([`Bearer ${bytes}`, insertAt(r, `Bearer ${r.pick([secrets.key, secrets.jwt])}`, bytes), bytes])
      return make('GET /echo HTTP/1.1', [auth(value)], [...CREDENTIAL_REFUSED, ...PARSER_REFUSED], 'header')
    }
    case 'raw-header-name': {
      const key = `Bearer ${r.pick([secrets.key, secrets.jwt])}`
      const [headers, allowed] = r.pick<readonly [string[], readonly string[]]>([
        [[`Authorization : ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
        [[`Authorization\t: ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
        [[`Authorization:${key}`], OK],
        [[`AUTHORIZATION: ${key}`], OK],
        [[`aUtHoRiZaTiOn: ${key}`], OK],
        [[`Authorization: ${key}`, `authorization: ${key}`], ['400 AUTH_HEADER_INVALID']],
        [[`Authorization: ${key}`, 'Authorization:'], ['400 AUTH_HEADER_INVALID']],
        [['Authorization: Bearer', ` ${key.slice(7)}`], [...PARSER_REFUSED, ...CREDENTIAL_REFUSED]],
        [['Authorization:', `\t${key}`], [...PARSER_REFUSED, ...CREDENTIAL_REFUSED]],
        [['Authorization'], PARSER_REFUSED],
        [[`Authori zation: ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
        [[`X-Authorization: ${key}`], NO_CREDENTIAL],
        [[`Authorization_: ${key}`], NO_CREDENTIAL],
        [[`Authorization-: ${key}`], NO_CREDENTIAL],
        [[`Proxy-Authorization: ${key}`], NO_CREDENTIAL],
        [[`Authorization: ${key}`, `Proxy-Authorization: ${key}`], OK],
        [[`\xc1uthorization: ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
        [[`Authorization\x00: ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
        [[`: ${key}`], [...PARSER_REFUSED, ...NO_CREDENTIAL]],
      ])
      return make('GET /echo HTTP/1.1', headers, allowed)
    }
    case 'raw-oversized': {
      if (r.chance(0.5)) return make('GET /echo HTTP/1.1', [auth('Bearer ' + r.string(BASE64URL, r.between(16_500, 24_000)))], TOO_LARGE, 'long Authorization')
      const count = r.between(101, 250)
      return make('GET /echo HTTP/1.1', [validAuth(), ...[...Array(count).keys()].map((i) => `X-Pad-${i}: ${i}`)], TOO_LARGE, `${count + 3} header fields`)
    }
  }
}
