import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
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

/**
 * The first table under `## heading` lists exactly the names of `expected`, in its order, each with the second
 * cell `expected` gives (`what` names the table and `source` the code it mirrors, in the messages).
 */
function tableMirrors(t: Test, heading: string, what: string, source: string, expected: ReadonlyArray<[name: string, cell: string]>) {
  const rows = namedRows(firstTableUnder(heading))
  t.ok(rows.size > 0, `the ${heading} section starts with a table of ${what}`)
  for (const [name, cell] of expected) {
    const row = rows.get(name)
    if (!row) {
      t.fail(`${name} is missing from the README ${what} table`)
      continue
    }
    t.equal(row[1], cell, `${name} is listed with ${cell}`)
  }
  const names = new Set(expected.map(([name]) => name))
  for (const name of rows.keys()) t.ok(names.has(name), `${name} in the README ${what} table exists in ${source}`)
  t.same([...rows.keys()], [...names], `the table lists the ${what} in the order of ${source}`)
}

t.test('every error code is listed in the README error table with its status, and the table lists no other', async (t) => {
  tableMirrors(t, 'Error codes', 'error codes', 'ERROR_CODES', Object.entries(ERROR_CODES).map(([code, spec]) => [code, String(spec.status)]))
})

t.test('every environment setting is listed in the README configuration reference with its default, and the table lists no other', async (t) => {
  tableMirrors(t, 'Configuration reference', 'settings', 'ENV_SETTINGS', Object.entries(ENV_SETTINGS).map(([name, setting]) => {
    const parsed = setting.schema.safeParse(undefined)
    const value: unknown = parsed.success ? parsed.data : undefined
    return [name, value === undefined || (Array.isArray(value) && value.length === 0) ? '—' : `\`${String(value)}\``]
  }))
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
