import type { IncomingMessage } from 'node:http'
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'
import { CLIENT_ADDRESS_PROOF_HEADER, type ClientAddressProof } from '../core/client-address-proof.ts'

/**
 * `x-forwarded-for/-proto/-host` for the upstream. What a client says about itself is believed only when the
 * connection comes from a configured proxy range (a load balancer in front of Keygate); from anyone else the
 * gateway states what it saw.
 */
/** The client's address as the gateway established it (inbound `x-keygate-*` headers never get through). */
export const CLIENT_ADDRESS_HEADER = 'x-keygate-client-address'

export interface ForwardedPolicy {
  /** @param withProof the client address goes with its proof (an upstream Keygate runs in-process: `Route.internal`). */
  headers(req: IncomingMessage, withProof: boolean): string[]
  /** The client's address: the peer, or behind trusted proxies the nearest address that is not one of them. */
  clientAddress(req: IncomingMessage): string
  /** Whether the connection comes from one of the configured proxies (whose forwarded headers are believed). */
  trustedPeer(req: IncomingMessage): boolean
}

/**
 * @param trusted addresses and CIDR ranges (`10.0.0.0/8`, `::1`) of proxies allowed to speak for clients.
 * @param proof when given, the client address goes to in-process upstreams with a proof
 *   (`x-keygate-client-address-proof`) that the in-process admin API checks before it believes the address.
 */
export function forwardedPolicy(trusted: readonly string[], proof?: Pick<ClientAddressProof, 'sign'>): ForwardedPolicy {
  const list = new BlockList()
  for (const entry of trusted) {
    const [address, bits] = entry.split('/') as [string, string | undefined]
    const type = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(bits), type)
  }
  const check = (address: string) => {
    if (isIP(address) === 0) return false
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4')
  }
  // BlockList.check builds a SocketAddress on every call (2 % of the gateway's CPU): verdicts are remembered
  // per address, a bounded set.
  const verdicts = new Map<string, boolean>()
  const isTrusted = (address: string): boolean => {
    if (trusted.length === 0) return false
    let verdict = verdicts.get(address)
    if (verdict === undefined) {
      verdict = check(address)
      if (verdicts.size >= 10_000) verdicts.clear()
      verdicts.set(address, verdict)
    }
    return verdict
  }
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v)
  // The client is the nearest address in the chain that is not one of our proxies: entries left of it were
  // written by the client itself and prove nothing. From an untrusted peer, the peer is the client.
  const clientOf = (remote: string, priorFor: string | undefined) => {
    let client = remote
    if (priorFor) {
      const chain = priorFor.split(',').map((a) => a.trim()).filter(Boolean)
      for (let i = chain.length - 1; i >= 0 && isTrusted(client); i--) client = chain[i]!
    }
    return client
  }
  return {
    trustedPeer: (req) => isTrusted(req.socket.remoteAddress ?? ''),
    clientAddress(req) {
      const remote = req.socket.remoteAddress ?? ''
      return clientOf(remote, isTrusted(remote) ? one(req.headers['x-forwarded-for']) : undefined)
    },
    headers(req, withProof) {
      const remote = req.socket.remoteAddress ?? ''
      const trustedPeer = isTrusted(remote)
      const tls = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
      const priorFor = trustedPeer ? one(req.headers['x-forwarded-for']) : undefined
      const proto = (trustedPeer && one(req.headers['x-forwarded-proto'])) || tls
      const host = (trustedPeer && one(req.headers['x-forwarded-host'])) || req.headers.host
      const client = clientOf(remote, priorFor)
      const out = ['x-forwarded-for', priorFor ? `${priorFor}, ${remote}` : remote, 'x-forwarded-proto', proto, CLIENT_ADDRESS_HEADER, client]
      if (proof && withProof) out.push(CLIENT_ADDRESS_PROOF_HEADER, proof.sign(client))
      if (host) out.push('x-forwarded-host', host)
      return out
    },
  }
}
