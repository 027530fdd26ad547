import type { Db } from './db.ts'
import { generateSigningKeyPem, loadSigningKey, type SigningAlg, type SigningKey } from './signing-keys.ts'

/**
 * Generated identity signing keys, shared by every instance through the database, and their rotation:
 *   rotate: next → current (it was published since the last rotation), current → previous, new next.
 * `published` returns what `/.well-known/jwks.json` shows: current first (it signs), next, then previous keys
 * whose identities may still be alive (rotated less than `retainSec` ago).
 */
const LOCK = 0x6b657968

export const signingKeyStore = {
  /** Makes sure a current and a next key exist (first start, or after an upgrade). */
  async ensure(db: Db, alg: SigningAlg): Promise<void> {
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK])
      const { rows } = await tx.query<{ state: string }>("SELECT state FROM signing_keys WHERE state IN ('current', 'next')")
      const have = new Set(rows.map((r) => r.state))
      for (const state of ['current', 'next']) {
        if (!have.has(state)) await tx.query('INSERT INTO signing_keys (state, private_pem) VALUES ($1, $2)', [state, generateSigningKeyPem(alg)])
      }
    })
  },

  async published(db: Db, now: Date, retainSec: number): Promise<SigningKey[]> {
    const { rows } = await db.query<{ state: string; private_pem: string; rotated_at: Date | null }>(
      `SELECT state, private_pem, rotated_at FROM signing_keys
       WHERE state IN ('current', 'next') OR rotated_at > $1
       ORDER BY CASE state WHEN 'current' THEN 0 WHEN 'next' THEN 1 ELSE 2 END, rotated_at DESC NULLS LAST`,
      [new Date(now.getTime() - retainSec * 1000)],
    )
    return rows.map((r) => loadSigningKey(r.private_pem))
  },

  /**
   * Promotes next to current and makes a new next; forgets keys rotated out over a day ago. Refuses (unless
   * `force`) while the next key has been published for less than `leadSec`: an upstream whose key cache
   * predates it would refuse the first identities it signs.
   * @returns the kid that now signs
   * @throws RotationTooSoonError
   */
  async rotate(db: Db, alg: SigningAlg, now: Date, options: { leadSec: number; force?: boolean }): Promise<string> {
    return db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK])
      const { rows } = await tx.query<{ private_pem: string; created_at: Date }>("SELECT private_pem, created_at FROM signing_keys WHERE state = 'next'")
      const publishedFor = rows[0] ? (now.getTime() - rows[0].created_at.getTime()) / 1000 : 0
      if (!options.force && publishedFor < options.leadSec) throw new RotationTooSoonError(publishedFor, options.leadSec)
      const next = rows[0]?.private_pem ?? generateSigningKeyPem(alg)
      // Identities live an hour at most: a key rotated out a day ago can go, private part and all.
      await tx.query("DELETE FROM signing_keys WHERE state = 'previous' AND rotated_at < $1", [new Date(now.getTime() - 86_400_000)])
      await tx.query("UPDATE signing_keys SET state = 'previous', rotated_at = $1 WHERE state = 'current'", [now])
      await tx.query("DELETE FROM signing_keys WHERE state = 'next'")
      await tx.query("INSERT INTO signing_keys (state, private_pem, created_at) VALUES ('current', $1, $2)", [next, now])
      await tx.query("INSERT INTO signing_keys (state, private_pem, created_at) VALUES ('next', $1, $2)", [generateSigningKeyPem(alg), now])
      return loadSigningKey(next).kid
    })
  },
}

/** The next key has not been published long enough for upstream key caches to know it. */
export class RotationTooSoonError extends Error {
  constructor(readonly publishedForSec: number, readonly leadSec: number) {
    super(`the next key has been published for ${Math.floor(publishedForSec)}s, less than KEYGATE_SIGNING_KEY_LEAD_SEC (${leadSec}s): upstream key caches may not know it yet. Retry in ${Math.ceil(leadSec - publishedForSec)}s, or pass --force`)
    this.name = 'RotationTooSoonError'
  }
}

/** Keys from configuration: several PEM blocks, or a JWK or JWK set (`{"keys":[…]}`); the first signs. */
export function parseConfiguredKeys(text: string): SigningKey[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    const parsed = JSON.parse(trimmed) as { keys?: unknown[] }
    const list = Array.isArray(parsed.keys) ? parsed.keys : [parsed]
    return list.map((k) => loadSigningKey(JSON.stringify(k)))
  }
  const blocks = trimmed.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []
  if (!blocks.length) throw new RangeError('no PEM block or JWK found in the signing key configuration')
  return blocks.map(loadSigningKey)
}
