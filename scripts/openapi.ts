import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openApiDocument } from '../admin-api/openapi.ts'

/**
 * `npm run openapi`: writes the admin API's OpenAPI document to `docs/openapi.json`, the file generated SDKs
 * are built from. `test/docs/readme.test.ts` fails when the committed file differs from the code.
 */
export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url))

export function openApiText(): string {
  return JSON.stringify(openApiDocument(), null, 2) + '\n'
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(dirname(OPENAPI_FILE), { recursive: true })
  writeFileSync(OPENAPI_FILE, openApiText())
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`)
}
