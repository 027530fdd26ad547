import { z } from 'zod'
import { ERROR_CODES } from '../core/error-codes.ts'
import * as S from './schemas.ts'

/**
 * The OpenAPI 3.1 document of the admin API, built from the very schemas the handlers validate with.
 * `npm run openapi` writes it to `docs/openapi.json`; a test fails when the committed file differs.
 */
type Op = {
  id: string
  summary: string
  auth: 'public' | 'credential' | 'jwt' | 'superuser'
  body?: z.ZodType
  ok: { status: number; schema: z.ZodType; description: string }
  errors: number[]
  params?: Array<{ name: string; in: 'path' | 'query'; schema: Record<string, unknown>; required?: boolean }>
  /** The admin scope a scoped API key needs (see `scopes.ts`). */
  scope?: string
}

const refOf = (schema: z.ZodType) => {
  const id = z.globalRegistry.get(schema)?.id
  if (!id) throw new Error('schema without id in the OpenAPI document')
  return { $ref: `#/components/schemas/${id}` }
}

const uuidParam = { name: 'id', in: 'path' as const, required: true, schema: { type: 'string', format: 'uuid' } }

const OPERATIONS: Record<string, Record<string, Op>> = {
  '/api/v1/auth/register': { post: { id: 'registerApiV1AuthRegisterPost', summary: 'Register (only when KEYGATE_ALLOW_REGISTRATION=true)', auth: 'public', body: S.RegisterRequest, ok: { status: 201, schema: S.TokenResponse, description: 'Registered and logged in' }, errors: [403, 409, 422] } },
  '/api/v1/auth/login': { post: { id: 'loginApiV1AuthLoginPost', summary: 'Log in with username or email and password', auth: 'public', body: S.LoginRequest, ok: { status: 200, schema: S.TokenResponse, description: 'Tokens; the refresh token is also set as an HttpOnly cookie' }, errors: [401, 403, 422, 429] } },
  '/api/v1/auth/refresh': { post: { id: 'refreshTokenApiV1AuthRefreshPost', summary: 'Rotate the refresh token (cookie or body)', auth: 'public', body: S.RefreshRequest, ok: { status: 200, schema: S.TokenPairResponse, description: 'New tokens; the one presented is spent' }, errors: [401, 403, 422] } },
  '/api/v1/auth/logout': { post: { id: 'logoutApiV1AuthLogoutPost', summary: 'End this login session', auth: 'credential', ok: { status: 200, schema: S.Message, description: 'Logged out' }, errors: [401, 403] } },
  '/api/v1/auth/sessions': { get: { id: 'listSessionsApiV1AuthSessionsGet', summary: 'The caller\'s live login sessions, newest first, at most 100; never a token (extension)', auth: 'credential', ok: { status: 200, schema: S.SessionList, description: 'Sessions' }, errors: [401] } },
  '/api/v1/auth/logout-all': { post: { id: 'logoutEverywhereApiV1AuthLogoutAllPost', summary: 'Log out everywhere: every login session of the caller ends on every instance, this one too; API keys stay valid (extension)', auth: 'credential', ok: { status: 200, schema: S.LogoutEverywhereResponse, description: 'Sessions ended' }, scope: 'sessions:write', errors: [401, 403] } },
  '/api/v1/auth/me': {
    get: { id: 'getCurrentUserInfoApiV1AuthMeGet', summary: 'The current user', auth: 'credential', ok: { status: 200, schema: S.UserResponse, description: 'The user' }, errors: [401] },
    put: { id: 'updateCurrentUserApiV1AuthMePut', summary: 'Update the email, profile and preferences', auth: 'credential', body: S.UpdateMeRequest, ok: { status: 200, schema: S.UserResponse, description: 'The updated user' }, scope: 'profile:write', errors: [401, 403, 409, 422] },
  },
  '/api/v1/auth/change-password': { post: { id: 'changePasswordApiV1AuthChangePasswordPost', summary: 'Change the password; other sessions end', auth: 'jwt', body: S.ChangePasswordRequest, ok: { status: 200, schema: S.Message, description: 'Changed' }, errors: [401, 403, 422, 429] } },
  '/api/v1/auth/api-key': {
    post: { id: 'createApiKeyApiV1AuthApiKeyPost', summary: 'Create an API key (the secret is shown only here)', auth: 'credential', body: S.CreateApiKeyRequest, ok: { status: 200, schema: S.ApiKeyCreated, description: 'The new key' }, scope: 'keys:write', errors: [401, 403, 409, 422] },
    delete: { id: 'revokeApiKeyApiV1AuthApiKeyDelete', summary: 'Revoke the key of this request, or the only key; with no active key, the same 200', auth: 'credential', ok: { status: 200, schema: S.Message, description: 'Revoked (or nothing left to revoke)' }, scope: 'keys:write', errors: [401, 403, 409] },
  },
  '/api/v1/auth/api-keys': { get: { id: 'listApiKeysApiV1AuthApiKeysGet', summary: 'List the usable API keys (never a secret); include_revoked=true adds revoked and expired ones (extension)', auth: 'credential', params: [{ name: 'include_revoked', in: 'query', schema: { type: 'boolean', default: false } }], ok: { status: 200, schema: S.ApiKeyList, description: 'Keys' }, scope: 'keys:read', errors: [401, 403, 422] } },
  '/api/v1/auth/api-keys/{id}': {
    delete: { id: 'revokeApiKeyByIdApiV1AuthApiKeysIdDelete', summary: 'Revoke a key by id (extension)', auth: 'credential', params: [uuidParam], ok: { status: 200, schema: S.Message, description: 'Revoked' }, scope: 'keys:write', errors: [401, 403, 404, 422] },
    patch: { id: 'updateApiKeyLimitsApiV1AuthApiKeysIdPatch', summary: 'Change a key\'s own rate limit or quotas: its owner may lower them, a superuser may also raise or remove them (403 NOT_SUPERUSER) (extension)', auth: 'credential', params: [uuidParam], body: S.PatchApiKeyRequest, ok: { status: 200, schema: S.ApiKey, description: 'The key with its new limits' }, scope: 'keys:write', errors: [401, 403, 404, 422] },
  },
  '/api/v1/auth/api-keys/{id}/roll': { post: { id: 'rollApiKeyApiV1AuthApiKeysIdRollPost', summary: 'Roll a key: a new secret now, the old one valid for a grace period of 0 to 7 days (extension)', auth: 'credential', params: [uuidParam], body: S.RollApiKeyRequest, ok: { status: 200, schema: S.ApiKeyCreated, description: 'The new key (its secret is shown only here)' }, scope: 'keys:write', errors: [401, 403, 404, 409, 422] } },
  '/api/v1/auth/account': { delete: { id: 'deactivateAccountApiV1AuthAccountDelete', summary: 'Deactivate the account; every credential stops working', auth: 'jwt', ok: { status: 200, schema: S.Message, description: 'Deactivated' }, errors: [401, 403] } },
  '/api/v1/auth/users': {
    get: { id: 'listUsersApiV1AuthUsersGet', summary: 'List users (extension)', auth: 'superuser', params: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, default: 50, description: `above ${S.MAX_USERS_PAGE}: clamped to ${S.MAX_USERS_PAGE}` } }, { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } }], ok: { status: 200, schema: S.UserList, description: 'Users, newest first, and the limit applied' }, scope: 'users:admin', errors: [401, 403, 422] },
    post: { id: 'createUserApiV1AuthUsersPost', summary: 'Create a user (extension)', auth: 'superuser', body: S.CreateUserRequest, ok: { status: 201, schema: S.UserResponse, description: 'Created' }, scope: 'users:admin', errors: [401, 403, 409, 422] },
  },
  '/api/v1/auth/users/{id}/api-keys/{key_id}': { patch: { id: 'updateUserApiKeyLimitsApiV1AuthUsersIdApiKeysKeyIdPatch', summary: 'Set a user\'s key\'s own rate limit or quotas, raising or removing them included (extension)', auth: 'superuser', params: [uuidParam, { name: 'key_id', in: 'path' as const, required: true, schema: { type: 'string', format: 'uuid' } }], body: S.PatchApiKeyRequest, ok: { status: 200, schema: S.ApiKey, description: 'The key with its new limits' }, scope: 'users:admin', errors: [401, 403, 404, 422] } },
  '/api/v1/auth/users/{id}': { patch: { id: 'updateUserApiV1AuthUsersIdPatch', summary: 'Activate, deactivate, grant or drop superuser, verify, set limits or the password (extension)', auth: 'superuser', params: [uuidParam], body: S.PatchUserRequest, ok: { status: 200, schema: S.UserResponse, description: 'Updated' }, scope: 'users:admin', errors: [401, 403, 404, 422] } },
  '/api/v1/auth/password-reset/request': { post: { id: 'requestPasswordResetApiV1AuthPasswordResetRequestPost', summary: 'Mail a single-use reset token (15 minutes) to the account with this email, if any; the same answer either way', auth: 'public', params: [{ name: 'email', in: 'query', required: true, schema: { type: 'string' } }], ok: { status: 200, schema: S.Message, description: '"Password reset email sent if account exists"' }, errors: [422, 429, 501] } },
  '/api/v1/auth/password-reset/confirm': { post: { id: 'confirmPasswordResetApiV1AuthPasswordResetConfirmPost', summary: 'Set a new password with a reset token; every session of the user ends (API keys stay valid)', auth: 'public', params: [{ name: 'token', in: 'query', required: true, schema: { type: 'string' } }, { name: 'new_password', in: 'query', required: true, schema: { type: 'string', minLength: 8, maxLength: 128 } }], ok: { status: 200, schema: S.Message, description: 'Password reset' }, errors: [400, 422, 429, 501] } },
  '/api/v1/auth/audit': { get: { id: 'listAuditEventsApiV1AuthAuditGet', summary: 'Credential events (extension); superusers see all', auth: 'credential', params: [{ name: 'user_id', in: 'query', schema: { type: 'string', format: 'uuid' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500 } }, { name: 'before', in: 'query', schema: { type: 'integer', minimum: 1 } }], ok: { status: 200, schema: S.AuditList, description: 'Events, newest first' }, scope: 'audit:read', errors: [401, 403, 422] } },
}

const STATUS_TEXT: Record<number, string> = { 400: 'Malformed request (Authorization header or JSON body), or an invalid reset token (RESET_TOKEN_INVALID)', 413: 'Body too large', 415: 'Unsupported charset or content encoding (UNSUPPORTED_MEDIA_TYPE)', 503: 'A dependency (the credential store, or the gateway\'s key set when the admin API runs on its own) is unavailable', 501: 'Password reset is not available: no mail transport is configured (PASSWORD_RESET_UNAVAILABLE)', 401: 'Missing or invalid credential (or, on change-password, a wrong current password: PASSWORD_INCORRECT)', 403: 'Forbidden', 404: 'Not found', 409: 'Conflict', 422: 'Validation failed', 429: 'Too many attempts, or past a rate limit of the route (RATE_LIMITED, with Retry-After)' }

function components(): Record<string, unknown> {
  const input = z.toJSONSchema(z.globalRegistry, { io: 'input', target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` }).schemas
  const output = z.toJSONSchema(z.globalRegistry, { io: 'output', target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` }).schemas
  const requestIds = new Set(Object.values(OPERATIONS).flatMap((ops) => Object.values(ops)).flatMap((op) => (op.body ? [z.globalRegistry.get(op.body)!.id!] : [])))
  const out: Record<string, unknown> = {}
  for (const id of Object.keys(output).sort()) {
    const { $schema: _, id: __, ...schema } = (requestIds.has(id) ? input[id] : output[id]) as Record<string, unknown>
    out[id] = schema
  }
  return out
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const [path, ops] of Object.entries(OPERATIONS)) {
    paths[path] = {}
    for (const [method, op] of Object.entries(ops)) {
      const responses: Record<string, unknown> = {
        [op.ok.status]: { description: op.ok.description, content: { 'application/json': { schema: refOf(op.ok.schema) } } },
      }
      // Every operation can meet these: a malformed Authorization header or body, a body too large, the
      // credential store down.
      const common = [...(op.body ? [400, 413, 415] : [400]), 503]
      for (const status of [...new Set([...op.errors, ...common])].sort()) responses[status] = { description: STATUS_TEXT[status], content: { 'application/problem+json': { schema: refOf(S.Problem) } } }
      paths[path]![method] = {
        operationId: op.id,
        summary: op.summary,
        tags: ['auth'],
        ...(op.auth === 'public' ? { security: [] } : {}),
        ...(op.params ? { parameters: op.params } : {}),
        ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: refOf(op.body) } } } } : {}),
        responses,
        ...(op.auth === 'jwt' ? { description: 'Needs a login token (JWT); an API key gets 403 JWT_REQUIRED.' } : {}),
        ...(op.auth === 'superuser' || op.scope ? { description: [op.auth === 'superuser' ? 'Superusers only; others get 403 NOT_SUPERUSER.' : '', op.scope ? `A scoped API key needs the admin scope \`${op.scope}\` (403 SCOPE_MISSING otherwise).` : ''].filter(Boolean).join(' ') } : {}),
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Keygate admin API',
      version: '1.0.0',
      description: 'Accounts and credentials behind the Keygate gateway. Every error is application/problem+json with a stable `code`: ' + Object.keys(ERROR_CODES).join(', ') + '.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A JWT from login, or an API key (sk_live_…)' } },
      schemas: components(),
    },
  }
}
