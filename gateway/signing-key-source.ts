import { readFileSync } from 'node:fs'
import type { EnvConfig } from '../config/schema.ts'
import { TUNABLES } from '../config/tunables.ts'
import type { Cleanups } from '../core/cleanups.ts'
import type { Clock } from '../core/clock.ts'
import type { Db } from '../core/db.ts'
import { identitySigner, type IdentitySigner } from '../core/identity-signer.ts'
import type { Logger } from '../core/logger.ts'
import { parseConfiguredKeys, signingKeyStore } from '../core/signing-key-store.ts'
import type { SigningKey } from '../core/signing-keys.ts'

/** The identity signer of the moment, and how to pick up a rotation. */
export interface SigningKeySource {
  /** The signer to use now (a function: a rotation swaps it). */
  signer(): IdentitySigner
  /** Reloads the keys from the database (a rotation message arrived); a no-op for configured keys. */
  reload(): Promise<void>
}

/**
 * Where the identity signing keys come from: configuration (KEYGATE_SIGNING_KEY or KEYGATE_SIGNING_KEY_FILE,
 * fixed), or generated and rotated in the database, shared by every instance (reloaded on every rotation message,
 * and every `TUNABLES.signingKeys.reloadMs` in case one was missed).
 */
export async function signingKeySource(deps: { env: EnvConfig; db: Db; clock: Clock; logger: Logger; cleanups: Cleanups }): Promise<SigningKeySource> {
  const { env, db, clock, logger } = deps
  const makeSigner = (keys: SigningKey[]) => identitySigner({ keys, issuer: env.KEYGATE_ISSUER, ttlSec: env.KEYGATE_IDENTITY_TTL, clock })
  const configured = env.KEYGATE_SIGNING_KEY ?? (env.KEYGATE_SIGNING_KEY_FILE ? readFileSync(env.KEYGATE_SIGNING_KEY_FILE, 'utf8') : undefined)
  if (configured) {
    const signer = makeSigner(parseConfiguredKeys(configured))
    return { signer: () => signer, reload: async () => {} }
  }
  await signingKeyStore.ensure(db, env.KEYGATE_SIGNING_ALG)
  const published = () => signingKeyStore.published(db, new Date(clock.now()), env.KEYGATE_IDENTITY_TTL + 60)
  let signer = makeSigner(await published())
  let kids = signer.jwks().keys.map((k) => k.kid).join()
  const reload = async () => {
    const keys = await published()
    const now = keys.map((k) => k.kid).join()
    if (now === kids) return
    kids = now
    signer = makeSigner(keys)
    logger.info('identity signing keys reloaded', { signing_kid: keys[0]!.kid, published: keys.length })
  }
  const timer = setInterval(() => { reload().catch((err: unknown) => logger.warn('signing key reload failed', { error: String(err) })) }, TUNABLES.signingKeys.reloadMs)
  timer.unref()
  deps.cleanups.unshift(async () => clearInterval(timer))
  return { signer: () => signer, reload }
}
