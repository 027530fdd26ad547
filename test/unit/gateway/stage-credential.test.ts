import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { extractCredential } from '../../../gateway/stage-credential.ts'

/** Builds what Node's parser would: `headers` keeps the first Authorization, `rawHeaders` keeps every line. */
function request(raw: Array<[string, string]>): IncomingMessage {
  const headers: Record<string, string> = {}
  for (const [name, value] of raw) {
    const n = name.toLowerCase()
    if (n === 'authorization') headers[n] ??= value
    else headers[n] = headers[n] === undefined ? value : `${headers[n]}, ${value}`
  }
  return { headers, rawHeaders: raw.flat() } as unknown as IncomingMessage
}

const INVALID = { kind: 'malformed', code: 'AUTH_HEADER_INVALID' }

t.test('a request without Authorization has no credential', async (t) => {
  t.same(extractCredential(request([])), { kind: 'none' })
  t.same(extractCredential(request([['Host', 'example.com'], ['X-Api-Key', 'sk_live_x']])), { kind: 'none' })
})

t.test('a Bearer credential is read, with the scheme in any case', async (t) => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    t.same(extractCredential(request([['Authorization', `${scheme} sk_live_abc123`]])), { kind: 'bearer', value: 'sk_live_abc123' }, scheme)
  }
  t.same(extractCredential(request([['authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_']])), { kind: 'bearer', value: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_' })
  t.same(extractCredential(request([['Authorization', 'Bearer   padded==  ']])), { kind: 'bearer', value: 'padded==' }, 'extra spaces around the value')
})

t.test('another scheme is a malformed header', async (t) => {
  t.same(extractCredential(request([['Authorization', 'Basic YWxpY2U6cGFzc3dvcmQ=']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'Token sk_live_abc']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'sk_live_abc']])), INVALID, 'no scheme')
})

t.test('two Authorization headers are a malformed request, whatever their spelling', async (t) => {
  t.same(extractCredential(request([['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']])), INVALID)
  t.same(extractCredential(request([['authorization', 'Bearer a'], ['AUTHORIZATION', 'Bearer a']])), INVALID, 'even when equal')
})

t.test('an empty value or an empty Bearer credential is malformed', async (t) => {
  t.same(extractCredential(request([['Authorization', '']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'Bearer']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'Bearer ']])), INVALID)
})

t.test('a credential with characters outside token68 or with inner spaces is malformed', async (t) => {
  t.same(extractCredential(request([['Authorization', 'Bearer a b']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'Bearer a,b']])), INVALID)
  t.same(extractCredential(request([['Authorization', 'Bearer =abc']])), INVALID)
})

t.test('a credential of 8192 characters is read and one of 8193 is malformed', async (t) => {
  t.same(extractCredential(request([['Authorization', `Bearer ${'a'.repeat(8192)}`]])), { kind: 'bearer', value: 'a'.repeat(8192) })
  t.same(extractCredential(request([['Authorization', `Bearer ${'a'.repeat(8193)}`]])), INVALID)
})

t.test('only spaces and tabs around the value are optional whitespace; any other blank is part of it', async (t) => {
  t.same(extractCredential(request([['Authorization', '\t Bearer  sk_live_abc123 \t']])), { kind: 'bearer', value: 'sk_live_abc123' })
  const blanks: Array<[string, string]> = [
    ['no-break space after', 'Bearer sk_live_abc123\u00a0'],
    ['no-break space before', '\u00a0Bearer sk_live_abc123'],
    ['no-break space between', 'Bearer \u00a0sk_live_abc123'],
    ['tab between', 'Bearer\tsk_live_abc123'],
    ['vertical tab after', 'Bearer sk_live_abc123\v'],
    ['form feed before', '\fBearer sk_live_abc123'],
  ]
  for (const [label, value] of blanks) {
    t.same(extractCredential(request([['Authorization', value]])), INVALID, label)
  }
})

t.test('a long run of spaces is refused without backtracking', async (t) => {
  const started = performance.now()
  t.same(extractCredential(request([['Authorization', `Bearer${' '.repeat(16_000)}a b`]])), INVALID)
  t.same(extractCredential(request([['Authorization', `Bearer a${' '.repeat(16_000)}b`]])), INVALID)
  t.ok(performance.now() - started < 100, 'in linear time (a backtracking pattern takes seconds on this input)')
})
