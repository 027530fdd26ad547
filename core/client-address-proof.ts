import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Clock } from './clock.ts'

/**
 * Proof that a client address was stated by this process's gateway. The in-process admin API listens on a
 * loopback port that any local process can reach; it believes `x-keygate-client-address` (which counts login
 * attempts per address and goes into the audit trail) only with a proof made with a secret of this process:
 * `<unix seconds>.<HMAC-SHA256(secret, address|seconds)>`, valid for `maxAgeSec`. A proof names its address, so
 * one seen by an upstream cannot vouch for another address, and it goes stale.
 */
export interface ClientAddressProof {
  sign(address: string): string
  verify(address: string, proof: string | undefined): boolean
}

export const CLIENT_ADDRESS_PROOF_HEADER = 'x-keygate-client-address-proof'

export function clientAddressProof(deps: { clock: Clock; secret?: Buffer; maxAgeSec?: number }): ClientAddressProof {
  const secret = deps.secret ?? randomBytes(32)
  const maxAge = deps.maxAgeSec ?? 30
  const mac = (address: string, sec: string) => createHmac('sha256', secret).update(`${address}|${sec}`).digest('base64url')
  // The gateway signs the address of every request it forwards; a proof depends only on the address and the
  // second, so within a second each address is signed once (an HMAC was ~4 µs of CPU per request).
  let signedSec = ''
  let signed = new Map<string, string>()
  return {
    sign(address) {
      const sec = String(Math.floor(deps.clock.now() / 1000))
      if (sec !== signedSec) {
        signedSec = sec
        signed = new Map()
      }
      let proof = signed.get(address)
      if (proof === undefined) {
        proof = `${sec}.${mac(address, sec)}`
        if (signed.size < 4096) signed.set(address, proof)
      }
      return proof
    },
    verify(address, proof) {
      if (!proof) return false
      const dot = proof.indexOf('.')
      const sec = proof.slice(0, dot)
      if (dot < 1 || !/^\d{1,12}$/.test(sec) || Math.abs(deps.clock.now() / 1000 - Number(sec)) > maxAge) return false
      const given = Buffer.from(proof.slice(dot + 1))
      const expected = Buffer.from(mac(address, sec))
      return given.length === expected.length && timingSafeEqual(given, expected)
    },
  }
}
