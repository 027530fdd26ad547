import { z } from 'zod'

/**
 * Request and response schemas of the admin API. Handlers validate with these, and `openapi.ts` builds the
 * OpenAPI document from the same objects, so the document cannot drift from the code.
 */
const username = z.string().min(3).max(50).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
// Text that is stored or looked up must reach PostgreSQL as sent: a NUL is refused by its text type (the call
// failed with 500), and an unpaired surrogate would be stored as U+FFFD (not what was sent).
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const storable = (s: string) => !s.includes('\u0000') && !UNPAIRED_SURROGATE.test(s)
const STORABLE = 'must not contain NUL or unpaired surrogate characters'
const fullName = z.string().max(200).refine(storable, STORABLE)
const password = z.string().min(8).max(128)
const email = z.email().max(254)
const isoTime = z.iso.datetime({ offset: true })
/** Most users one `GET /users` page holds; a larger `limit` is clamped to it. */
export const MAX_USERS_PAGE = 500

const loginIdentifier = z.string().min(1).max(254).refine(storable, STORABLE).nullish()
export const LoginRequest = z.strictObject({
  username: loginIdentifier.describe('A username, or an email (any identifier containing "@" is looked up as an email); wins over `email` when both are set'),
  email: loginIdentifier,
  password: z.string().min(1).max(128),
  remember_me: z.boolean().nullish(),
}).refine((b) => (b.username ?? b.email ?? null) !== null, { message: 'give username or email', path: ['username'] }).meta({ id: 'LoginRequest' })

/** The optional profile fields of UserCreate and UserUpdate. */
const profileText = (max: number) => z.string().max(max).refine(storable, STORABLE).nullish()
const profileFields = {
  full_name: fullName.nullish(),
  bio: profileText(1000),
  avatar_url: profileText(500),
  phone_number: profileText(20),
}
const preferenceFields = {
  default_llm_provider: profileText(100),
  default_profile_id: profileText(100),
}
const limitFields = {
  daily_message_limit: z.number().int().min(0).max(2_147_483_647).nullish(),
  monthly_message_limit: z.number().int().min(0).max(2_147_483_647).nullish(),
  max_file_size_mb: z.number().int().min(0).max(2_147_483_647).nullish(),
}

export const RegisterRequest = z.strictObject({ email, username, password, ...profileFields }).meta({ id: 'RegisterRequest' })
export const RefreshRequest = z.strictObject({ refresh_token: z.string().min(1).max(512).optional() }).meta({ id: 'RefreshRequest' })
export const UpdateMeRequest = z.strictObject({ email: email.optional(), ...profileFields, ...preferenceFields }).meta({ id: 'UpdateMeRequest' })
export const ChangePasswordRequest = z.strictObject({ current_password: z.string().min(1).max(128), new_password: password }).meta({ id: 'ChangePasswordRequest' })

const scope = z.string().regex(/^[a-z0-9:._-]{1,64}$/, 'lowercase letters, digits and ":._-"')
const KeyRateLimit = z.strictObject({
  limit: z.number().int().min(1).max(1_000_000).describe('Requests allowed in any window_seconds'),
  window_seconds: z.number().int().min(1).max(86_400),
}).describe('The key\'s own rate limit, counted per route besides the route\'s own: it can only make the key slower').meta({ id: 'KeyRateLimit' })
const KeyQuota = z.strictObject({
  daily: z.number().int().min(1).max(1_000_000_000).optional().describe('Requests per UTC day'),
  monthly: z.number().int().min(1).max(1_000_000_000).optional().describe('Requests per calendar month (UTC)'),
}).refine((q) => q.daily !== undefined || q.monthly !== undefined, { message: 'give daily, monthly or both (null removes the quota)' }).meta({ id: 'KeyQuota' })
const keyLimitFields = { rate_limit: KeyRateLimit.nullish(), quota: KeyQuota.nullish() }

export const CreateApiKeyRequest = z.strictObject({
  ...keyLimitFields,
  name: z.string().trim().min(1).max(100).refine(storable, STORABLE),
  expires_in_days: z.number().int().min(1).max(3650).optional(),
  expires_at: isoTime.optional(),
  scopes: z.array(scope).max(50).optional(),
}).meta({ id: 'CreateApiKeyRequest' })

export const RollApiKeyRequest = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(7 * 86_400).default(0).describe('How long the old key keeps working: 0 (revoked now) to 604800 (7 days)'),
  ...keyLimitFields,
}).meta({ id: 'RollApiKeyRequest' })

export const PatchApiKeyRequest = z.strictObject(keyLimitFields)
  .refine((b) => b.rate_limit !== undefined || b.quota !== undefined, { message: 'give rate_limit, quota or both (null removes one)', path: ['rate_limit'] })
  .meta({ id: 'PatchApiKeyRequest' })

export const CreateUserRequest = z.strictObject({ username, password, email, ...profileFields, is_superuser: z.boolean().optional() }).meta({ id: 'CreateUserRequest' })
export const PatchUserRequest = z.strictObject({
  is_active: z.boolean().optional(),
  is_superuser: z.boolean().optional(),
  is_verified: z.boolean().optional(),
  password: password.optional().describe('Sets the password; every session of the user ends (API keys stay valid)'),
  ...limitFields,
}).meta({ id: 'PatchUserRequest' })

export const ListUsersQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).default(50).transform((n) => Math.min(n, MAX_USERS_PAGE)),
  offset: z.coerce.number().int().min(0).default(0),
})
export const ListApiKeysQuery = z.strictObject({ include_revoked: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') })
export const PasswordResetRequestQuery = z.strictObject({ email: z.string().min(1).max(254) })
export const PasswordResetConfirmQuery = z.strictObject({ token: z.string().min(1).max(200), new_password: password })

const nullableText = z.string().nullable()
const nullableInt = z.number().int().nullable()
export const UserResponse = z.strictObject({
  id: z.uuid(),
  email: z.email(),
  username: z.string(),
  full_name: nullableText,
  bio: nullableText,
  avatar_url: nullableText,
  phone_number: nullableText,
  is_active: z.boolean(),
  is_verified: z.boolean(),
  is_superuser: z.boolean(),
  default_llm_provider: nullableText,
  default_profile_id: nullableText,
  daily_message_limit: nullableInt,
  monthly_message_limit: nullableInt,
  max_file_size_mb: nullableInt,
  api_key_name: nullableText.describe('Name of the user\'s usable API key (the newest if several), else null'),
  created_at: isoTime,
  updated_at: isoTime,
  last_login_at: isoTime.nullable(),
}).meta({ id: 'UserResponse' })

export const TokenPairResponse = z.strictObject({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
}).meta({ id: 'RefreshResponse' })

export const TokenResponse = TokenPairResponse.extend({ refresh_token: z.string().nullable(), user: UserResponse }).meta({ id: 'TokenResponse' })

export const ApiKeyCreated = z.strictObject({
  id: z.uuid(),
  api_key: z.string().regex(/^sk_[a-z0-9]+_[0-9A-Za-z]{49}$/),
  api_key_name: z.string(),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  scopes: z.array(z.string()),
  rate_limit: KeyRateLimit.nullable().optional(),
  quota: KeyQuota.nullable().optional(),
}).meta({ id: 'APIKeyCreated' })

export const ApiKey = z.strictObject({
  id: z.uuid(),
  api_key_name: z.string(),
  api_key: z.string().regex(/^sk_[a-z0-9]+_[0-9A-Za-z]{4}…[0-9A-Za-z]{4}$/).describe('display form only, never the secret'),
  created_at: isoTime,
  last_used_at: isoTime.nullable(),
  expires_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
  scopes: z.array(z.string()),
  rate_limit: KeyRateLimit.nullable().optional(),
  quota: KeyQuota.nullable().optional(),
  usage: z.strictObject({ day: z.number().int(), month: z.number().int() }).optional().describe('Requests counted against the key\'s quotas today and this month (UTC), summed by the gateways every few seconds'),
}).meta({ id: 'APIKey' })

export const ApiKeyList = z.array(ApiKey).meta({ id: 'APIKeyList' })
export const UserList = z.strictObject({ users: z.array(UserResponse), total: z.number().int(), offset: z.number().int(), limit: z.number().int() }).meta({ id: 'UserListResponse' })
export const Message = z.strictObject({ message: z.string() }).meta({ id: 'Message' })

export const SessionInfo = z.strictObject({
  id: z.uuid(),
  created_at: isoTime.describe('when it signed in'),
  last_used_at: isoTime.describe('when its refresh token was last rotated (or the login)'),
  expires_at: isoTime.describe('when it ends unless refreshed'),
  current: z.boolean().describe('true for the session of the calling token'),
}).meta({ id: 'SessionInfo' })
export const SessionList = z.array(SessionInfo).meta({ id: 'SessionList' })
export const LogoutEverywhereResponse = z.strictObject({ message: z.string(), sessions_ended: z.number().int() }).meta({ id: 'LogoutEverywhereResponse' })

export const AuditEvent = z.strictObject({
  id: z.string(),
  at: isoTime,
  event: z.string(),
  actor_user_id: z.uuid().nullable(),
  subject_user_id: z.uuid().nullable(),
  key_id: z.uuid().nullable(),
  client_address: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
}).meta({ id: 'AuditEvent' })
export const AuditList = z.array(AuditEvent).meta({ id: 'AuditList' })
export const AuditQuery = z.strictObject({
  user_id: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.coerce.number().int().positive().optional(),
})

export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  instance: z.string().optional(),
  errors: z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string() })).optional(),
  missing_scopes: z.array(z.string()).optional().describe('SCOPE_MISSING: the admin scopes (or key scopes) the credential lacks'),
}).meta({ id: 'Problem' })
