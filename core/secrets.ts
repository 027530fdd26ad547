import { randomBytes } from 'node:crypto'
import type { Queryable } from './db.ts'

/**
 * Returns the secret called `name`, generating it with `make` on first use. Insert-if-absent then read back,
 * so instances starting together on one database all end up with the same value.
 */
export async function sharedSecret(db: Queryable, name: string, make: () => string = () => randomBytes(48).toString('base64url')): Promise<string> {
  await db.query('INSERT INTO keygate_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, make()])
  const { rows } = await db.query<{ value: string }>('SELECT value FROM keygate_secrets WHERE name = $1', [name])
  return rows[0]!.value
}
