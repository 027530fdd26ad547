import { readFileSync } from 'node:fs'
import t from 'tap'
import { openApiDocument } from '../../admin-api/openapi.ts'
import { ENV_SETTINGS } from '../../config/schema.ts'
import { ERROR_CODES } from '../../core/error-codes.ts'

/**
 * The README, the generated OpenAPI file and the code describe one thing: these tests fail when they drift
 * apart (a new error code or setting without its README row, a row for one that no longer exists, a stale
 * `docs/openapi.json`).
 */
const root = new URL('../../', import.meta.url)
const readme = readFileSync(new URL('README.md', root), 'utf8')

/** The rows of the first markdown table under the `## heading` section, as arrays of trimmed cells. */
function firstTableUnder(heading: string): string[][] {
  const lines = readme.split('\n')
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`)
  if (start === -1) throw new Error(`README.md has no "## ${heading}" section`)
  const rows: string[][] = []
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.startsWith('## ')) break
    if (!line.startsWith('|')) {
      if (rows.length) break
      continue
    }
    rows.push(line.replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim()))
  }
  // Drop the header row and the |---| separator.
  return rows.slice(2)
}

/** Rows whose first cell is a single backticked name, keyed by that name. */
function namedRows(rows: string[][]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const cells of rows) {
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[0] ?? '')?.[1]
    if (name) out.set(name, cells)
  }
  return out
}

t.test('every error code is listed in the README error table with its status, and the table lists no other', async (t) => {
  const rows = namedRows(firstTableUnder('Error codes'))
  t.ok(rows.size > 0, 'the Error codes section starts with a table of codes')
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = rows.get(code)
    if (!row) {
      t.fail(`${code} is missing from the README error table`)
      continue
    }
    t.equal(row[1], String(spec.status), `${code} is listed with status ${spec.status}`)
  }
  for (const code of rows.keys()) t.ok(Object.hasOwn(ERROR_CODES, code), `${code} in the README error table exists in ERROR_CODES`)
  t.same([...rows.keys()], Object.keys(ERROR_CODES), 'the table lists the codes in the order of ERROR_CODES')
})

t.test('every environment setting is listed in the README configuration reference with its default, and the table lists no other', async (t) => {
  const rows = namedRows(firstTableUnder('Configuration reference'))
  t.ok(rows.size > 0, 'the Configuration reference section starts with a table of settings')
  for (const [name, setting] of Object.entries(ENV_SETTINGS)) {
    const row = rows.get(name)
    if (!row) {
      t.fail(`${name} is missing from the README configuration table`)
      continue
    }
    const parsed = setting.schema.safeParse(undefined)
    const value: unknown = parsed.success ? parsed.data : undefined
    const expected = value === undefined || (Array.isArray(value) && value.length === 0) ? '—' : `\`${String(value)}\``
    t.equal(row[1], expected, `${name} is listed with its default ${expected}`)
  }
  for (const name of rows.keys()) t.ok(Object.hasOwn(ENV_SETTINGS, name), `${name} in the README configuration table exists in ENV_SETTINGS`)
  t.same([...rows.keys()], Object.keys(ENV_SETTINGS), 'the table lists the settings in the order of ENV_SETTINGS')
})

t.test('docs/openapi.json is exactly the document the admin API serves', async (t) => {
  let text: string
  try {
    text = readFileSync(new URL('docs/openapi.json', root), 'utf8')
  } catch {
    t.fail('docs/openapi.json is missing: run `npm run openapi`')
    return
  }
  t.ok(text === JSON.stringify(openApiDocument(), null, 2) + '\n', 'docs/openapi.json is up to date (if not: run `npm run openapi`)')
})

t.test('every operation has its own operationId and every contract endpoint is in the OpenAPI document', async (t) => {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId?: string }>> }
  const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId))
  t.ok(ids.length > 0, 'the document has operations')
  t.ok(ids.every((id) => typeof id === 'string' && id.length > 0), 'every operation has an operationId')
  const seen = new Set<string>()
  for (const id of ids) {
    t.notOk(seen.has(id!), `operationId ${id} is used once`)
    seen.add(id!)
  }
  const contract = ['register', 'login', 'refresh', 'logout', 'me', 'change-password', 'api-key', 'api-keys', 'api-keys/{id}', 'account', 'users', 'users/{id}', 'audit']
  for (const p of contract) t.ok(Object.hasOwn(doc.paths, `/api/v1/auth/${p}`), `/api/v1/auth/${p} is documented`)
})
