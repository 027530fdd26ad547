import { isIP } from 'node:net'
import { z } from 'zod'
import { parseRedisUrl } from '../core/redis-connect.ts'
import { parseRateLimit, RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MAX_SECONDS } from '../core/rate-limit.ts'

/**
 * Every setting Keygate reads, declared once with its default and meaning. The README's configuration
 * reference is checked against `ENV_SETTINGS` by `test/docs/readme.test.ts`.
 */
const port = z.coerce.number().int().min(0).max(65535)
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v))
const seconds = z.coerce.number().int().positive()
/** An exact web origin: scheme, host and optional port, nothing else (never `*`). */
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/

export const ENV_SETTINGS = {
  PORT: { schema: port.default(8000), doc: 'Port this process listens on: the gateway (data plane, and the admin API when it runs in-process), or the admin API or a demo service run on its own.' },
  HOST: { schema: z.string().min(1).default('0.0.0.0'), doc: 'Address this process listens on (the gateway, or the admin API or a demo service run on its own).' },
  METRICS_PORT: { schema: port.default(9090), doc: 'Port of the Prometheus metrics endpoint (`/metrics`), bound to 127.0.0.1 unless METRICS_HOST says otherwise; 0 picks a free port.' },
  METRICS_HOST: { schema: z.string().min(1).default('127.0.0.1'), doc: 'Address of the metrics endpoint.' },
  DATABASE_URL: { schema: z.string().url().optional(), doc: 'PostgreSQL server URL. Unset: the embedded PostgreSQL (PGlite) under KEYGATE_DATA_DIR.' },
  DATABASE_SCHEMA: { schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).optional(), doc: 'PostgreSQL schema for Keygate\'s tables (created when missing); several deployments can share one database. Unset: the server\'s search_path.' },
  DATABASE_POOL_SIZE: { schema: z.coerce.number().int().min(1).max(1000).default(10), doc: 'Connections per instance to the PostgreSQL server.' },
  DATABASE_STATEMENT_TIMEOUT_MS: { schema: z.coerce.number().int().min(100).default(5000), doc: 'Statement timeout on the PostgreSQL server; the client gives up 500 ms later if no answer came (a silent network). Either way: 503 DATABASE_UNAVAILABLE.' },
  REDIS_URL: { schema: z.string().refine((url) => { try { return Boolean(parseRedisUrl(url)) } catch { return false } }, 'a redis://host:port, rediss://, redis-sentinel://host:port[,host:port]/master or redis-cluster://host:port[,host:port] URL').optional(), doc: 'Redis URL: `redis://` or `rediss://` (one server), `redis-sentinel://host:port[,host:port…]/master[/db]` (Sentinel), `redis-cluster://host:port[,host:port…]` (Cluster). Set: a credential cache shared by every instance, revocation broadcast over pub/sub and shared login attempt counters. Unset: in-process cache and counters; revocations travel by PostgreSQL LISTEN/NOTIFY (DATABASE_URL) or stay in the one process (embedded).' },
  KEYGATE_REDIS_PREFIX: { schema: z.string().regex(/^[A-Za-z0-9:_-]*$/).default('keygate:'), doc: 'Prefix of every Redis key Keygate writes.' },
  KEYGATE_TRUSTED_PROXIES: {
    schema: z.string().default('').transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean)).refine(
      (list) => list.every((e) => { const [a, b] = e.split('/'); return isIP(a!) !== 0 && (b === undefined || (/^\d+$/.test(b) && Number(b) <= (isIP(a!) === 6 ? 128 : 32))) }),
      'comma-separated IP addresses or CIDR ranges, such as 10.0.0.0/8,::1',
    ),
    doc: 'Proxies (IPs or CIDR ranges, comma-separated) whose x-forwarded-for/-proto/-host are believed; from anyone else they are replaced. Also the only peers the decision endpoint `/_keygate/decide` answers (an ingress in decision mode).',
  },
  KEYGATE_DECISION_CACHE_SEC: { schema: z.coerce.number().int().min(0).max(300).default(1), doc: 'How long an ingress may cache an allowing answer of the decision endpoint (`/_keygate/decide`), seconds: its `X-Accel-Expires` and `Cache-Control: private, max-age`, never beyond half of KEYGATE_IDENTITY_TTL or the credential\'s own expiry. A revoked credential is refused at the ingress within this time. 0: not cacheable. Denials never are.' },
  KEYGATE_STRIP_HEADERS: {
    schema: z.string().default('x-original-url,x-rewrite-url,true-client-ip,x-client-ip,cf-connecting-ip,x-real-ip,remote-user,x-remote-user,x-forwarded-user,x-forwarded-email,x-forwarded-groups,x-auth-request-*')
      .transform((v) => v.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean))
      .refine((list) => list.every((n) => /^[a-z0-9_-]+\*?$/.test(n)), 'comma-separated header names; an entry ending in * is a prefix'),
    doc: 'Client request headers dropped before forwarding, besides the reserved families (comma-separated; `name*` is a prefix; `_` matches `-`): headers that upstreams commonly believe (a rewritten URL, the client address a CDN states, the user an authenticating proxy asserts). Setting it replaces the list.',
  },
  KEYGATE_CORS_ORIGINS: {
    schema: z.string().default('').transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean)).refine(
      (list) => list.every((o) => ORIGIN.test(o)),
      'comma-separated exact origins such as https://app.example.com,http://localhost:3000 (scheme, host and port only; no "*")',
    ),
    doc: 'Browser origins (comma-separated, exact: `https://app.example.com`) allowed to call every route with credentials; a route\'s `cors` block overrides it. Preflights are answered by the gateway before authentication; other origins get 403 CORS_ORIGIN_FORBIDDEN. Pages of these origins may also use the refresh cookie (`/login`, `/refresh`, `/logout`); other origins get 403 CROSS_SITE_REFUSED there. Empty: CORS off.',
  },
  KEYGATE_DATA_DIR: { schema: z.string().min(1).default('./data'), doc: 'Directory of the embedded database (used without DATABASE_URL).' },
  KEYGATE_CONFIG: { schema: z.string().min(1).default('config/keygate.yaml'), doc: 'Route and upstream configuration file (YAML).' },
  KEYGATE_CONFIG_WATCH: { schema: bool.default(true), doc: 'Reload the route file when it changes (SIGHUP always reloads).' },
  KEYGATE_ISSUER: { schema: z.string().min(1).default('keygate'), doc: '`iss` of access tokens and identity assertions.' },
  KEYGATE_JWT_SECRET: { schema: z.string().min(32).optional(), doc: 'HS256 secret of access tokens (≥ 32 bytes). Unset: generated once and shared through the database.' },
  KEYGATE_SIGNING_KEY: { schema: z.string().min(1).optional(), doc: 'Identity signing private keys (PEM blocks, a JWK or a JWK set; Ed25519 or P-256): the first signs, all are published. Unset: KEYGATE_SIGNING_KEY_FILE, else generated and rotated in the database.' },
  KEYGATE_SIGNING_KEY_FILE: { schema: z.string().min(1).optional(), doc: 'File holding identity signing private keys (same formats as KEYGATE_SIGNING_KEY).' },
  KEYGATE_SIGNING_ALG: { schema: z.enum(['EdDSA', 'ES256']).default('EdDSA'), doc: 'Algorithm of generated identity signing keys (EdDSA: Ed25519; ES256: P-256).' },
  KEYGATE_SIGNING_KEY_LEAD_SEC: { schema: z.coerce.number().min(0).default(300), doc: 'How long a new signing key is published before a rotation may promote it (upstream key caches must learn it first; 300 s = the JWKS max-age).' },
  KEYGATE_IDENTITY_HEADER: { schema: z.string().regex(/^[a-z0-9-]+$/).default('x-keygate-identity'), doc: 'Header carrying the signed identity to upstreams.' },
  KEYGATE_IDENTITY_TTL: { schema: seconds.max(3600).default(60), doc: 'Lifetime of an identity assertion, seconds.' },
  KEYGATE_JWKS_URL: { schema: z.string().regex(/^https?:\/\/[^\s/]+\/\S*$/, 'an http(s) URL such as http://gateway:8000/.well-known/jwks.json').optional(), doc: 'The gateway\'s published key set (`http://gateway:8000/.well-known/jwks.json`) against which a process running apart from the gateway verifies the identity header: the admin API run on its own (`npm run admin-api`, which requires it) and the standalone demo services. Any gateway or the load balancer in front of them will do: every instance publishes the same keys. The gateway itself does not read it.' },
  KEYGATE_ACCESS_TOKEN_TTL: { schema: seconds.default(900), doc: 'Access token lifetime, seconds (`expires_in`).' },
  KEYGATE_REFRESH_TOKEN_TTL: { schema: seconds.default(604800), doc: 'Refresh token lifetime, seconds.' },
  KEYGATE_REFRESH_REUSE_WINDOW_MS: { schema: z.coerce.number().int().min(0).max(60000).default(10000), doc: 'A spent refresh token presented again within this window is a client retry: its earlier successor is replaced, so the session keeps one live refresh token. Later, or once that successor was used, it revokes its whole session.' },
  KEYGATE_API_KEY_PREFIX: { schema: z.string().regex(/^sk_[a-z0-9]+_$/).default('sk_live_'), doc: 'Environment prefix of new API keys (`sk_live_`, `sk_test_`).' },
  KEYGATE_MAX_KEYS_PER_USER: { schema: z.coerce.number().int().min(1).max(1000).default(1), doc: 'Active API keys a user may hold. A key rolled with a grace period stands beyond the limit until the period ends, one at a time: another roll with a grace period meanwhile is 409 KEY_LIMIT_REACHED.' },
  KEYGATE_PASSWORD_HASH_LOG_N: { schema: z.coerce.number().int().min(14).max(20).default(17), doc: 'scrypt cost as log2(N) for new password hashes (OWASP: 17).' },
  KEYGATE_PASSWORD_HASH_QUEUE: { schema: z.coerce.number().int().min(0).max(10000).default(16), doc: 'Password hashes (login, password change, user creation) that may wait for one of the two hashing slots; past it the call answers 503 PASSWORD_HASH_BUSY at once instead of queueing.' },
  KEYGATE_LOGIN_MAX_ATTEMPTS: { schema: z.coerce.number().int().min(1).default(10), doc: 'Failed logins allowed per username and per client address in a window, and failed password changes per user; then 429 with Retry-After. Each attempt is counted before the password is checked.' },
  KEYGATE_LOGIN_WINDOW_SEC: { schema: seconds.default(300), doc: 'The login attempt window, seconds.' },
  KEYGATE_ALLOW_REGISTRATION: { schema: bool.default(false), doc: 'Enables `POST /api/v1/auth/register`.' },
  KEYGATE_BOOTSTRAP_USERNAME: { schema: z.string().min(3).max(50).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only').optional(), doc: 'Creates this superuser on start when it does not exist (with KEYGATE_BOOTSTRAP_EMAIL and KEYGATE_BOOTSTRAP_PASSWORD).' },
  KEYGATE_BOOTSTRAP_EMAIL: { schema: z.email().max(254).optional(), doc: 'Email of the bootstrap user; required with KEYGATE_BOOTSTRAP_USERNAME (every user has one).' },
  KEYGATE_BOOTSTRAP_PASSWORD: { schema: z.string().optional(), doc: 'Password of the bootstrap user; never logged.' },
  KEYGATE_SMTP_URL: { schema: z.string().regex(/^smtps?:\/\/\S+$/, 'an smtp:// or smtps:// URL such as smtp://user:pass@mail.internal:587').optional(), doc: 'Mail transport of password reset mails (`smtp://user:pass@host:port`, `smtps://…`); never logged. Unset: `POST /password-reset/*` answer 501 PASSWORD_RESET_UNAVAILABLE.' },
  KEYGATE_MAIL_FROM: { schema: z.email().optional(), doc: 'Sender address of password reset mails; required with KEYGATE_SMTP_URL.' },
  KEYGATE_DEMOS: { schema: bool.default(true), doc: 'Starts the demo conversation and document services in-process on free ports.' },
  KEYGATE_UNKNOWN_KEY_LOOKUPS: { schema: z.coerce.number().int().min(1).max(1_000_000).default(50), doc: 'Database lookups of unknown API keys (well-formed, valid checksum, no such key) one client address may cause in 10 s, per gateway process; past it, its uncached keys get 429 KEY_LOOKUPS_LIMITED until the 10 s end (cached keys keep working).' },
  KEYGATE_RATE_LIMIT_DEFAULT: { schema: z.string().default('off').refine((v) => parseRateLimit(v) !== undefined, 'off, or LIMIT/WINDOW such as 100/min, 1000/hour or 100/60s (limit 1 to 1000000, window 1 s to 1 day)'), doc: 'Rate limit of each route without its own `rate_limit`, counted per route and per API key (else per user, else per client address): `100/min`, `1000/hour`, `100/60s`. Counted in Redis with REDIS_URL (one budget for every instance), else in-process. `off`: no default limit.' },
  KEYGATE_CACHE_MAX: { schema: z.coerce.number().int().min(0).default(100000), doc: 'Credential cache entries per process.' },
  KEYGATE_CACHE_TTL_MS: { schema: z.coerce.number().int().min(0).default(60000), doc: 'Lifetime of a cached credential.' },
  KEYGATE_CACHE_NEGATIVE_TTL_MS: { schema: z.coerce.number().int().min(0).default(5000), doc: 'Lifetime of a cached "no such key".' },
  KEYGATE_WORKERS: { schema: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(256)]).default(1), doc: 'Gateway processes (Node cluster) sharing PORT; `auto`: one per core. More than 1 needs DATABASE_URL.' },
  KEYGATE_SHUTDOWN_GRACE_MS: { schema: z.coerce.number().int().min(0).default(10000), doc: 'On SIGTERM, how long in-flight requests may finish.' },
  KEYGATE_DRAIN_DELAY_MS: { schema: z.coerce.number().int().min(0).max(600000).default(0), doc: 'On SIGTERM, how long the gateway keeps accepting requests (answering `/readyz` with 503 and `connection: close`) before it stops listening, so a load balancer that health-checks `/readyz` moves away first. Set it above the balancer\'s check interval for restarts without a failed request.' },
  KEYGATE_HEADERS_TIMEOUT_MS: { schema: z.coerce.number().int().min(100).max(600000).default(10000), doc: 'Longest time a client may take to send the request line and headers; then 408 REQUEST_TIMEOUT and the connection is closed (slow-header attacks).' },
  KEYGATE_MAX_HEADER_BYTES: { schema: z.coerce.number().int().min(1024).max(1048576).default(16384), doc: 'Largest request line plus headers, bytes; larger is 431 HEADERS_TOO_LARGE.' },
  KEYGATE_MAX_HEADERS: { schema: z.coerce.number().int().min(8).max(10000).default(100), doc: 'Most request header fields; more is 431 HEADERS_TOO_LARGE.' },
  KEYGATE_TLS_CERT_FILE: { schema: z.string().min(1).optional(), doc: 'PEM certificate (chain) of a TLS listener on PORT; with KEYGATE_TLS_KEY_FILE. Reloaded when the file changes (or on SIGHUP). Unset: plain HTTP (terminate TLS in front).' },
  KEYGATE_TLS_KEY_FILE: { schema: z.string().min(1).optional(), doc: 'PEM private key (unencrypted) of KEYGATE_TLS_CERT_FILE; never logged.' },
  OTEL_EXPORTER_OTLP_ENDPOINT: { schema: z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'an http(s) URL such as http://otel-collector:4318').optional(), doc: 'OpenTelemetry collector (OTLP/HTTP, such as `http://otel-collector:4318`): one span per request is exported to its `/v1/traces`. Unset: no export and the SDK is not loaded (W3C `traceparent` is still passed on).' },
  OTEL_SERVICE_NAME: { schema: z.string().min(1).default('keygate'), doc: '`service.name` of the exported spans.' },
  LOG_LEVEL: { schema: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'), doc: 'Log level of the JSON logs on stdout.' },
} as const

type Settings = typeof ENV_SETTINGS

export const envSchema = z.object(Object.fromEntries(Object.entries(ENV_SETTINGS).map(([k, v]) => [k, v.schema])) as { [K in keyof Settings]: Settings[K]['schema'] })
export type EnvConfig = Readonly<z.output<typeof envSchema>>

// ---------------------------------------------------------------------------------------------------
// The file: upstreams and routes.

const upstreamName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-", starting with a letter')

const originUrl = z.string().regex(/^(https?:\/\/[^/\s]+\/?|internal:[a-z-]+)$/, 'an http(s) origin such as http://10.0.0.5:8080, or internal:<service>')
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], { error: 'expected true or false' })
/** A whole number of milliseconds from 1 to `max`; every failure says so (`timeout_ms: expected milliseconds…`). */
const milliseconds = (max: number) => {
  const range = `expected milliseconds as a whole number from 1 to ${max}`
  return z.coerce.number({ error: 'expected milliseconds as a number' }).int({ error: range }).positive({ error: range }).max(max, { error: range })
}
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
const AUTH_MODES = ['public', 'optional', 'required'] as const

export const upstreamSchema = z.strictObject({
  /** `http(s)://host:port` (or a list of them, used in turn), or `internal:<name>` for a service Keygate starts in-process. */
  url: z.union([originUrl, z.array(originUrl).min(1)]),
  /** PEM file of the CAs an https:// upstream's certificate is checked against, instead of the system's (a private CA). */
  ca_file: z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }).optional(),
  /** PEM client certificate presented to an https:// upstream that requires mutual TLS (with key_file). */
  cert_file: z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }).optional(),
  /** PEM private key of cert_file (unencrypted). */
  key_file: z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }).optional(),
})

const routeFields = {
  name: z.string({ error: 'expected a name: lowercase letters, digits and "-"' }).regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-"'),
  /** Path prefix, matched on whole segments (`/api/v1/documents` matches `/api/v1/documents/…`, not `/api/v1/documentsX`). */
  prefix: z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'a path starting with "/"'),
  /** Match the prefix in exact case (default: case-insensitively, as many upstream frameworks route). */
  case_sensitive: flag.default(false),
  methods: z.array(z.enum(METHODS, { error: `expected one of ${METHODS.join(', ')}` }), { error: `expected a list of methods (${METHODS.join(', ')})` }).min(1, { error: 'expected at least one method (leave methods out for every method)' }).optional(),
  /** Host header to match (without port, case-insensitive); `*.example.com` matches any subdomain. */
  host: z.string().regex(/^(\*\.)?[A-Za-z0-9.-]+$/, 'a host name, or *.domain').transform((h) => h.toLowerCase()).optional(),
  upstream: upstreamName,
  /** `aud` of the identity assertion; default: the upstream's name. */
  audience: z.string().min(1).max(200).optional(),
  /** Remove the prefix before forwarding (`/svc/a` → `/a`). */
  strip_prefix: flag.default(false),
  /** Replace the prefix by this path before forwarding (`/v1` with `/api/v2` → `/api/v2/…`). */
  rewrite_prefix: z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'a path starting with "/"').optional(),
  /** public: no credential needed or read; optional: anonymous allowed, a bad credential is 401; required. */
  auth: z.enum(AUTH_MODES, { error: `expected ${AUTH_MODES.join(', ')}` }).default('required'),
  scopes: z.array(z.string({ error: 'expected a scope name' }).min(1, { error: 'expected a scope name' }), { error: 'expected a list of scope names' }).default([]),
  /** Until the upstream's response headers arrive. */
  timeout_ms: milliseconds(3_600_000).default(30_000),
  /** Longest silence on either body (upload or download) before the exchange is cut. */
  idle_timeout_ms: milliseconds(3_600_000).default(60_000),
  /** Largest request body; larger is refused with 413 (at once when Content-Length says so). */
  max_body_bytes: z.coerce.number({ error: 'expected bytes as a number' }).int({ error: 'expected bytes as a whole number, 0 or more' }).min(0, { error: 'expected bytes as a whole number, 0 or more' }).default(10 * 1024 * 1024),
  /** Most exchanges of this route in flight at once in one process; one more is 503 ROUTE_BUSY. Unset: no limit. */
  max_concurrent: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /** Read the whole request body before contacting the upstream (default: on public routes), within body_timeout_ms. */
  read_body_first: flag.optional(),
  /** With read_body_first: the whole body must arrive within this many ms (0: no deadline), else 408 BODY_TIMEOUT. */
  body_timeout_ms: z.coerce.number({ error: 'expected milliseconds as a number' }).int().min(0).max(3_600_000).default(10_000),
  /** Bind the identity to this request's method and the route prefix (claims `htm`, `htp`), so an assertion
   * captured by one upstream cannot be replayed at another route of the same audience. */
  bind_request: flag.default(false),
  /** Accept WebSocket upgrades on this route. */
  websockets: flag.default(false),
  /** Also send x-user-id, x-username, x-auth-method, x-api-key-id (for legacy backends on a trusted network). */
  plain_identity_headers: flag.default(false),
  /** CORS for browser applications on other origins; overrides KEYGATE_CORS_ORIGINS for this route (`origins: []` turns it off). */
  cors: z.strictObject({
    origins: z.array(z.string().regex(ORIGIN, 'an exact origin such as https://app.example.com (no "*", no path)')),
    credentials: flag.default(true),
    max_age_sec: z.coerce.number().int().min(0).max(86_400).default(600),
    allow_headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name')).default([]),
    expose_headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name')).default([]),
  }).optional(),
  /** Forward the client's Authorization header to the upstream (off: the credential stops at the gateway). */
  forward_authorization: flag.default(false),
  /** Requests allowed per `window_seconds` (sliding), counted per API key (a login token: per user), per user or per client address; 429 RATE_LIMITED past it. */
  rate_limit: z.strictObject({
    limit: z.coerce.number({ error: 'expected a number of requests' }).int({ error: `expected requests as a whole number from 1 to ${RATE_LIMIT_MAX}` }).min(1, { error: `expected requests as a whole number from 1 to ${RATE_LIMIT_MAX}` }).max(RATE_LIMIT_MAX, { error: `expected requests as a whole number from 1 to ${RATE_LIMIT_MAX}` }),
    window_seconds: z.coerce.number({ error: 'expected seconds as a number' }).int({ error: `expected seconds as a whole number from 1 to ${RATE_LIMIT_WINDOW_MAX_SECONDS}` }).min(1, { error: `expected seconds as a whole number from 1 to ${RATE_LIMIT_WINDOW_MAX_SECONDS}` }).max(RATE_LIMIT_WINDOW_MAX_SECONDS, { error: `expected seconds as a whole number from 1 to ${RATE_LIMIT_WINDOW_MAX_SECONDS}` }),
    per: z.enum(['key', 'user', 'address'], { error: 'expected key, user or address' }).optional(),
  }).optional(),
}

export const routeSchema = z.strictObject(routeFields, {
  error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}; a route's fields are ${Object.keys(routeFields).join(', ')}` : undefined),
}).refine((r) => !(r.strip_prefix && r.rewrite_prefix !== undefined), { message: 'strip_prefix and rewrite_prefix exclude each other', path: ['rewrite_prefix'] })
  // A public route is what anyone can hold open: its bodies are read before the upstream is involved unless it says otherwise.
  .transform((r) => ({ ...r, read_body_first: r.read_body_first ?? r.auth === 'public' }))

export const fileSchema = z.strictObject({
  upstreams: z.record(upstreamName, upstreamSchema),
  routes: z.array(routeSchema).min(1),
})

export type RouteConfig = z.output<typeof routeSchema>
export type FileConfig = z.output<typeof fileSchema>
