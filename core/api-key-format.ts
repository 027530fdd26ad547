import { hash, randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { base62Encode, base62EncodeInt } from './base62.ts'

/**
 * The API key format: `<prefix><43 base62 chars of 32 random bytes><6 base62 chars of CRC32(prefix+random)>`,
 * for example `sk_live_…`. The checksum lets Keygate reject a mistyped or forged key before any lookup, and
 * lets secret scanners recognise leaked keys (GitHub's token format does the same).
 */
const RANDOM_BYTES = 32
const RANDOM_CHARS = 43
const CHECKSUM_CHARS = 6
const BODY = /^[0-9A-Za-z]+$/

export interface ApiKeyFormat {
  readonly prefix: string
  /** Creates a new key; the caller stores only `hash` and `display`. */
  generate(): { key: string; hash: string; display: string }
  /** True when `candidate` has this prefix, the exact length, only base62 characters and a valid checksum. */
  isWellFormed(candidate: string): boolean
  /** True when the credential claims to be a key (starts with `sk_`), well formed or not. */
  looksLikeKey(candidate: string): boolean
}

/** SHA-256 of the whole key, hex: the only form in which a key is stored or cached. */
export function hashApiKey(key: string): string {
  // The one-shot form: a Hash object per call cost more than the digest itself, on every request.
  return hash('sha256', key, 'hex')
}

/** `sk_live_abcd…wxyz`: enough for a person to recognise a key, never enough to use it. */
export function displayApiKey(key: string, prefix: string): string {
  return `${prefix}${key.slice(prefix.length, prefix.length + 4)}…${key.slice(-4)}`
}

function checksum(text: string): string {
  return base62EncodeInt(crc32(text), CHECKSUM_CHARS)
}

/** @param prefix the environment prefix, `sk_live_` by default (`sk_test_` for a test environment). */
export function apiKeyFormat(prefix = 'sk_live_'): ApiKeyFormat {
  if (!/^sk_[a-z0-9]+_$/.test(prefix)) throw new RangeError(`API key prefix must match sk_<env>_, got ${JSON.stringify(prefix)}`)
  const length = prefix.length + RANDOM_CHARS + CHECKSUM_CHARS
  return {
    prefix,
    generate() {
      const head = prefix + base62Encode(randomBytes(RANDOM_BYTES), RANDOM_CHARS)
      const key = head + checksum(head)
      return { key, hash: hashApiKey(key), display: displayApiKey(key, prefix) }
    },
    isWellFormed(candidate) {
      if (candidate.length !== length || !candidate.startsWith(prefix)) return false
      const body = candidate.slice(prefix.length)
      if (!BODY.test(body)) return false
      const head = candidate.slice(0, length - CHECKSUM_CHARS)
      return checksum(head) === candidate.slice(length - CHECKSUM_CHARS)
    },
    looksLikeKey(candidate) {
      return candidate.startsWith('sk_')
    },
  }
}
