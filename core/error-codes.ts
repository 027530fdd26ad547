/**
 * The closed set of Keygate error codes. One row per code: the HTTP status it maps to, the RFC 9457 title,
 * and the `detail` clients see by default. The README's error table is checked against this registry by
 * `test/core/error-codes.test.ts`, so neither can drift.
 */
export interface ErrorCodeSpec {
  readonly status: number
  readonly title: string
  readonly detail: string
  /** RFC 6750 `error` attribute for `WWW-Authenticate`; `null` sends a bare `Bearer` challenge. */
  readonly bearerError?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | null
  /** `Retry-After` seconds sent with every answer of this code. */
  readonly retryAfter?: number
}

const INVALID_CREDENTIAL = 'Invalid token or API key'
const unauthorized = (detail = INVALID_CREDENTIAL): ErrorCodeSpec => ({
  status: 401,
  title: 'Authentication Required',
  detail,
  bearerError: 'invalid_token',
})

export const ERROR_CODES = {
  // --- credentials (gateway) -----------------------------------------------------------------------
  AUTH_REQUIRED: { status: 401, title: 'Authentication Required', detail: 'Authentication credentials required', bearerError: null },
  AUTH_HEADER_INVALID: { status: 400, title: 'Bad Request', detail: 'Malformed Authorization header; expected "Bearer <credential>"', bearerError: 'invalid_request' },
  KEY_MALFORMED: unauthorized(),
  KEY_UNKNOWN: unauthorized(),
  KEY_REVOKED: unauthorized(),
  KEY_EXPIRED: unauthorized(),
  TOKEN_INVALID: unauthorized(),
  TOKEN_EXPIRED: unauthorized(),
  TOKEN_REVOKED: unauthorized(),
  USER_INACTIVE: unauthorized(),
  KEY_LOOKUPS_LIMITED: { status: 429, title: 'Too Many Requests', detail: 'Too many unknown API keys from this address; retry later', retryAfter: 10 },
  INSUFFICIENT_SCOPE: { status: 403, title: 'Forbidden', detail: 'The credential lacks a scope this route requires', bearerError: 'insufficient_scope' },
  // --- requests (gateway) --------------------------------------------------------------------------
  CORS_ORIGIN_FORBIDDEN: { status: 403, title: 'Forbidden', detail: 'This origin may not call this route from a browser (see KEYGATE_CORS_ORIGINS)' },
  CROSS_SITE_REFUSED: { status: 403, title: 'Forbidden', detail: 'A browser page of another site may not make this call (it would act with the refresh cookie); see KEYGATE_CORS_ORIGINS' },
  ROUTE_NOT_FOUND: { status: 404, title: 'Not Found', detail: 'No route matches this request' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method Not Allowed', detail: 'A route matches this path, but not this method; the Allow header lists the methods it accepts' },
  WEBSOCKET_NOT_ALLOWED: { status: 400, title: 'Bad Request', detail: 'This route does not accept WebSocket upgrades' },
  WEBSOCKET_METHOD_INVALID: { status: 400, title: 'Bad Request', detail: 'A WebSocket upgrade must be a GET request' },
  DECISION_PEER_UNTRUSTED: { status: 403, title: 'Forbidden', detail: 'The decision endpoint answers only the ingress proxies listed in KEYGATE_TRUSTED_PROXIES' },
  DECISION_REQUEST_INVALID: { status: 400, title: 'Bad Request', detail: 'The decision request does not state the original request: X-Original-URI and X-Original-Method (nginx), X-Forwarded-Uri and X-Forwarded-Method (Caddy, Traefik) or a path under /_keygate/decide/ (Envoy), each once, with a method of A-Z only and no method override header' },
  PATH_INVALID: { status: 400, title: 'Bad Request', detail: 'The request path is not allowed (encoded separators, dot segments or control characters)' },
  REQUEST_MALFORMED: { status: 400, title: 'Bad Request', detail: 'The request is not valid HTTP/1.1 (its framing, Host header, version or characters); the connection is closed' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request Header Fields Too Large', detail: 'The request headers are too large or too many' },
  BODY_TIMEOUT: { status: 408, title: 'Request Timeout', detail: 'The request body did not arrive in time; the connection is closed' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request Timeout', detail: 'The request headers did not arrive in time; the connection is closed' },
  // --- upstreams and our own dependencies ----------------------------------------------------------
  ROUTE_BUSY: { status: 503, title: 'Service Unavailable', detail: 'This route has as many requests in flight as it allows; retry in a moment', retryAfter: 1 },
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'Bad Gateway', detail: 'The upstream service could not be reached' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Gateway Timeout', detail: 'The upstream service did not answer in time' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'Service Unavailable', detail: 'The credential store is unavailable; retry later' },
  INVALIDATION_FAILED: { status: 503, title: 'Service Unavailable', detail: 'The change was saved, but not every gateway could be told yet; it is sent again until they are' },
  IDENTITY_KEYS_UNAVAILABLE: { status: 503, title: 'Service Unavailable', detail: 'The gateway\'s identity key set could not be fetched; retry later' },
  NOT_READY: { status: 503, title: 'Service Unavailable', detail: 'Not ready' },
  INTERNAL: { status: 500, title: 'Internal Server Error', detail: 'Internal error' },
  // --- admin API -----------------------------------------------------------------------------------
  LOGIN_FAILED: { status: 401, title: 'Authentication Required', detail: 'Invalid username or password', bearerError: null },
  PASSWORD_HASH_BUSY: { status: 503, title: 'Service Unavailable', detail: 'Too many password checks are in progress; retry in a moment', retryAfter: 1 },
  RATE_LIMITED: { status: 429, title: 'Too Many Requests', detail: 'Too many requests (failed logins, or past the rate limit or quota of this route or key); retry after the seconds Retry-After gives' },
  IDENTITY_REQUIRED: unauthorized('Authentication credentials required'),
  NOT_SUPERUSER: { status: 403, title: 'Forbidden', detail: 'This operation requires a superuser' },
  SCOPE_MISSING: { status: 403, title: 'Forbidden', detail: 'The API key lacks the admin scope this operation needs, or asked for a key wider than itself', bearerError: 'insufficient_scope' },
  JWT_REQUIRED: { status: 403, title: 'Forbidden', detail: 'This operation requires a login token, not an API key' },
  NOT_FOUND: { status: 404, title: 'Not Found', detail: 'Not found' },
  VALIDATION_FAILED: { status: 422, title: 'Unprocessable Content', detail: 'The request is invalid' },
  BODY_INVALID_JSON: { status: 400, title: 'Bad Request', detail: 'The request body is not valid JSON' },
  BODY_TOO_LARGE: { status: 413, title: 'Content Too Large', detail: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported Media Type', detail: 'The request body must be application/json' },
  KEY_LIMIT_REACHED: { status: 409, title: 'Conflict', detail: 'User already has an API key. Revoke existing key first.' },
  KEY_AMBIGUOUS: { status: 409, title: 'Conflict', detail: 'Several API keys exist; revoke one with DELETE /api/v1/auth/api-keys/{id}' },
  USER_EXISTS: { status: 409, title: 'Conflict', detail: 'A user with this username or email already exists' },
  PASSWORD_INCORRECT: { status: 401, title: 'Authentication Required', detail: 'The current password is incorrect' },
  REFRESH_INVALID: unauthorized('Invalid or expired refresh token'),
  REGISTRATION_DISABLED: { status: 403, title: 'Forbidden', detail: 'Registration is disabled' },
  PASSWORD_RESET_UNAVAILABLE: { status: 501, title: 'Not Implemented', detail: 'Password reset is not available: no mail transport is configured (KEYGATE_SMTP_URL)' },
  RESET_TOKEN_INVALID: { status: 400, title: 'Bad Request', detail: 'Invalid or expired password reset token' },
} as const satisfies Record<string, ErrorCodeSpec>

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value)
}
