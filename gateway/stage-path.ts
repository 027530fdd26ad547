/**
 * Stage 1 of the pipeline: the request target, normalised before any route sees it. Anything that could make
 * one path mean two things to the gateway and to an upstream (dot segments, encoded `/` `\` `.`, NUL and
 * control characters, invalid UTF-8) is refused rather than guessed at; repeated slashes collapse. A dot segment
 * with path parameters (`..;x`, `.;`) counts as one: Servlet containers strip the parameters, then resolve it.
 * A raw `#` is refused. Case and `;` parameters are the router's concern (see `router.ts`).
 */
export type PathResult = { ok: true; path: string; search: string } | { ok: false; code: 'PATH_INVALID' }

const FORBIDDEN_ENCODED = /%(2f|5c|2e|00)/i
const CONTROL = /[\u0000-\u001f\u007f\\]/
const UNRESERVED_ENCODED = /%(3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]|2d|5f|7e)/gi

export function normalizePath(target: string | undefined): PathResult {
  if (!target || target[0] !== '/') return { ok: false, code: 'PATH_INVALID' }
  // A fragment never belongs in a request target (RFC 9112 §3.2): the gateway would route `/a/secret#x` by one
  // path while an upstream that cuts at `#` serves another.
  if (target.includes('#')) return { ok: false, code: 'PATH_INVALID' }
  const q = target.indexOf('?')
  const raw = q === -1 ? target : target.slice(0, q)
  const search = q === -1 ? '' : target.slice(q)
  if (FORBIDDEN_ENCODED.test(raw) || CONTROL.test(raw)) return { ok: false, code: 'PATH_INVALID' }
  if (CONTROL.test(search)) return { ok: false, code: 'PATH_INVALID' }
  // The common case, a path with nothing encoded, no empty and no dot segment, is already normal.
  if (!raw.includes('%') && !raw.includes('//') && !raw.includes('/.') && !raw.includes('\ufffd')) return { ok: true, path: raw, search }
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    return { ok: false, code: 'PATH_INVALID' }
  }
  if (CONTROL.test(decoded) || decoded.includes('\ufffd')) return { ok: false, code: 'PATH_INVALID' }
  // An encoded unreserved character means the character itself to every upstream (RFC 3986 §6.2.2.2): decoded
  // here, so that `/%61dmin` meets the route of `/admin` instead of slipping past it to a shorter prefix.
  const path = raw.replace(UNRESERVED_ENCODED, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replace(/\/{2,}/g, '/')
  for (const segment of decoded.split('/')) {
    const name = segment.includes(';') ? segment.slice(0, segment.indexOf(';')) : segment
    if (name === '.' || name === '..') return { ok: false, code: 'PATH_INVALID' }
  }
  return { ok: true, path, search }
}
