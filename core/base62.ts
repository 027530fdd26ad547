const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** Encodes bytes (big-endian integer) as base62, left-padded with '0' to `width` characters. */
export function base62Encode(bytes: Uint8Array, width: number): string {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  let out = ''
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)] + out
    n /= 62n
  }
  if (out.length > width) throw new RangeError(`value needs ${out.length} base62 digits, more than ${width}`)
  return out.padStart(width, '0')
}

/** Encodes a non-negative integer below 2^53 as base62, left-padded to `width`. */
export function base62EncodeInt(value: number, width: number): string {
  let n = value
  let out = ''
  while (n > 0) {
    out = ALPHABET[n % 62] + out
    n = Math.floor(n / 62)
  }
  return out.padStart(width, '0')
}

export const BASE62_PATTERN = '[0-9A-Za-z]'
