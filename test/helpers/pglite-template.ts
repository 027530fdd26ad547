import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { ROOT } from '../../scripts/entry-points.ts'

/**
 * An embedded database in a new directory starts with PGlite's initdb, about 4 s of CPU (an existing one opens
 * in about 1 s), and a dozen test files each start one or more. They get a copy of a cluster initdb'd once per
 * checkout and PGlite version instead (kept in node_modules/.cache): the files PGlite itself wrote for an empty directory, without Keygate's
 * schema, which every instance still migrates and bootstraps on its own start. The first start on an empty
 * directory stays tested where it is the subject: test/integration/walkthrough-pglite.test.ts,
 * cli/embedded.test.ts (`--init`) and scripts/build.test.ts (`npm start` on a fresh clone).
 */
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string }).version
// Where tools keep their caches in a project: removed with node_modules, never left in the machine's /tmp.
const TEMPLATE = join(ROOT, 'node_modules/.cache', `keygate-pglite-initdb-${VERSION}`)

let made: Promise<void> | undefined

/** Makes TEMPLATE unless it exists; parallel test processes race harmlessly: the first rename wins. */
function template(): Promise<void> {
  made ??= (async () => {
    if (existsSync(TEMPLATE)) return
    mkdirSync(dirname(TEMPLATE), { recursive: true })
    const building = mkdtempSync(`${TEMPLATE}.building-`)
    try {
      const db = await PGlite.create(join(building, 'pgdata'))
      await db.close()
      try {
        renameSync(join(building, 'pgdata'), TEMPLATE)
      } catch (err) {
        if (!['EEXIST', 'ENOTEMPTY'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
      }
    } finally {
      rmSync(building, { recursive: true, force: true })
    }
  })()
  return made
}

/** A new temporary KEYGATE_DATA_DIR whose `pgdata` is a copy of the initdb'd template. */
export async function freshPgliteDir(): Promise<string> {
  await template()
  const dir = mkdtempSync(join(tmpdir(), 'keygate-test-'))
  cpSync(TEMPLATE, join(dir, 'pgdata'), { recursive: true })
  return dir
}
