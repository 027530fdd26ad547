/**
 * The admin API from the console, on the same origin. The access token lives in this module's memory only (never
 * in storage, a cookie readable by scripts, or the URL); a reload gets a new one with the HttpOnly refresh cookie.
 */
const BASE = '/api/v1/auth'

export interface User {
  id: string; username: string; email: string; full_name: string | null
  is_active: boolean; is_verified: boolean; is_superuser: boolean
  created_at: string; last_login_at: string | null; api_key_name: string | null
}
export interface ApiKey {
  id: string; api_key_name: string; api_key: string; created_at: string; last_used_at: string | null
  expires_at: string | null; revoked_at: string | null; scopes?: string[]
  /** Present when the deployment reports them (rate limits, usage); shown as they come. */
  rate_limit?: unknown; usage?: unknown
}
export interface NewKey { id: string; api_key: string; api_key_name: string; created_at: string; expires_at: string | null; scopes?: string[] }
export interface Session { id: string; created_at: string; last_used_at: string; expires_at: string; current: boolean }
export interface AuditEvent { id: string; at: string; event: string; actor_user_id: string | null; subject_user_id: string | null; key_id: string | null; client_address: string | null; detail: Record<string, unknown> }

/** An answer that was not a success: its status, stable code and what to show. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message) }
}

let accessToken: string | null = null
/** Called when the session is gone (refresh refused): the console shows the sign-in page. */
let onSignedOut: () => void = () => {}
export const whenSignedOut = (f: () => void) => { onSignedOut = f }
export const signedIn = () => accessToken !== null

async function problem(res: Response): Promise<ApiError> {
  let body: { code?: string; detail?: string; errors?: Array<{ loc: unknown[]; msg: string }> } = {}
  try { body = await res.json() } catch { /* not JSON: the status speaks */ }
  const fields = body.errors?.map((e) => `${String(e.loc.at(-1))}: ${e.msg}`).join('; ')
  return new ApiError(res.status, body.code ?? 'HTTP_' + res.status, fields ? `${body.detail ?? 'Invalid input'} (${fields})` : body.detail ?? `Request failed (${res.status})`)
}

function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (accessToken) headers.authorization = `Bearer ${accessToken}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  return fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' })
}

let refreshing: Promise<boolean> | null = null
/** A new access token from the refresh cookie; false when there is no live session. One at a time. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const res = await fetch(BASE + '/refresh', { method: 'POST', credentials: 'same-origin', cache: 'no-store' })
      if (!res.ok) { accessToken = null; return false }
      // The refresh token in the body is dropped: the cookie carries it.
      accessToken = ((await res.json()) as { access_token: string }).access_token
      return true
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

/** Calls the API with the access token; on a 401, refreshes once and retries; then gives up to the sign-in page. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res = await send(method, path, body)
  if (res.status === 401 && accessToken && (await refresh())) res = await send(method, path, body)
  if (res.status === 401) {
    const err = await problem(res)
    accessToken = null
    onSignedOut()
    throw err
  }
  if (!res.ok) throw await problem(res)
  return (await res.json()) as T
}

export async function login(identifier: string, password: string): Promise<User> {
  const res = await fetch(BASE + '/login', {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ username: identifier, password }),
  })
  if (!res.ok) throw await problem(res)
  const body = (await res.json()) as { access_token: string; user: User }
  accessToken = body.access_token
  return body.user
}

export async function logout(): Promise<void> {
  try { if (accessToken) await send('POST', '/logout') } finally { accessToken = null }
}

/** Forgets the access token without a call (the session was ended by "log out everywhere"). */
export function forget(): void { accessToken = null }
