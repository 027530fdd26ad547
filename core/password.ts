import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { KeygateError } from './errors.ts'

/**
 * Password hashing with scrypt from `node:crypto`. OWASP's parameters by default (N=2^17, r=8, p=1: 128 MiB
 * and ~100-300 ms a hash); the parameters are stored with each hash (`scrypt$ln$r$p$salt$hash`) so they can
 * be raised later without invalidating existing passwords. At most `concurrency` hashes run at once, because
 * each one holds 128 MiB, and at most `maxQueue` wait: past that, a hash fails at once with 503
 * PASSWORD_HASH_BUSY instead of queueing (a burst of logins must not make every other login wait for seconds).
 */
export interface PasswordHasher {
  hash(password: string): Promise<string>
  /** Constant-time check of `password` against a stored hash; false for a hash it cannot parse. */
  verify(password: string, stored: string): Promise<boolean>
  /** Spends the same time as a real `verify`, for an unknown user (so enumeration by timing fails). */
  verifyDummy(password: string): Promise<false>
}

const KEY_LENGTH = 32

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

function semaphore(limit: number, maxQueue: number) {
  let active = 0
  const waiting: Array<() => void> = []
  return async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (active >= limit) {
      if (waiting.length >= maxQueue) throw new KeygateError('PASSWORD_HASH_BUSY', 'too many password hashes queued')
      await new Promise<void>((resolve) => waiting.push(resolve))
    }
    active++
    try {
      return await fn()
    } finally {
      active--
      waiting.shift()?.()
    }
  }
}

export function passwordHasher(options: { logN?: number; concurrency?: number; maxQueue?: number } = {}): PasswordHasher {
  const logN = options.logN ?? 17
  const r = 8
  const p = 1
  const limit = semaphore(options.concurrency ?? 2, options.maxQueue ?? 16)
  const derive = (password: string, salt: Buffer, ln: number, rr: number, pp: number) =>
    limit(() => scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N: 2 ** ln, r: rr, p: pp, maxmem: 2 * 128 * rr * 2 ** ln + 1024 * 1024 }))
  let dummy: Promise<string> | undefined

  async function hash(password: string): Promise<string> {
    const salt = randomBytes(16)
    const key = await derive(password, salt, logN, r, p)
    return ['scrypt', logN, r, p, salt.toString('base64url'), key.toString('base64url')].join('$')
  }

  async function verify(password: string, stored: string): Promise<boolean> {
    const parts = stored.split('$')
    if (parts.length !== 6 || parts[0] !== 'scrypt') return false
    const [ln, rr, pp] = parts.slice(1, 4).map(Number) as [number, number, number]
    // Bounds far above anything Keygate writes: scrypt would throw or run for minutes on a corrupt row's numbers.
    if (![ln, rr, pp].every((n) => Number.isInteger(n) && n > 0) || ln > 22 || rr > 32 || pp > 16) return false
    const expected = Buffer.from(parts[5]!, 'base64url')
    const actual = await derive(password, Buffer.from(parts[4]!, 'base64url'), ln, rr, pp)
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  }

  return {
    hash,
    verify,
    async verifyDummy(password) {
      // A first hash refused by a full queue must not be remembered: the next call makes it again.
      dummy ??= hash('keygate-dummy-password').catch((err: unknown) => {
        dummy = undefined
        throw err
      })
      await verify(password, await dummy)
      return false
    },
  }
}
