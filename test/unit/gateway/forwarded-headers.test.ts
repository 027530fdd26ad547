import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { clientAddressProof } from '../../../core/client-address-proof.ts'
import { CLIENT_ADDRESS_HEADER, forwardedPolicy } from '../../../gateway/forwarded-headers.ts'

const clock = { now: () => 1_800_000_000_000 }
const request = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers: { host: 'gw.example.com', ...headers } }) as unknown as IncomingMessage
const asRecord = (flat: string[]) => Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]]])))

t.test('the client address goes to an in-process upstream with a proof the admin API accepts, for that address only', async (t) => {
  const proof = clientAddressProof({ clock })
  const sent = asRecord(forwardedPolicy([], proof).headers(request('203.0.113.9'), true))
  t.equal(sent[CLIENT_ADDRESS_HEADER], '203.0.113.9')
  t.ok(proof.verify('203.0.113.9', sent['x-keygate-client-address-proof']))
  t.notOk(proof.verify('198.51.100.7', sent['x-keygate-client-address-proof']))
})

t.test('any other upstream gets the client address without a proof it could replay', async (t) => {
  const sent = asRecord(forwardedPolicy([], clientAddressProof({ clock })).headers(request('203.0.113.9'), false))
  t.equal(sent[CLIENT_ADDRESS_HEADER], '203.0.113.9')
  t.notOk('x-keygate-client-address-proof' in sent)
})

t.test('what a peer says of the client is believed only from a trusted proxy', async (t) => {
  const policy = forwardedPolicy(['10.0.0.0/8'])
  const spoofed = { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example.com' }
  t.same(asRecord(policy.headers(request('203.0.113.9', spoofed), false)), { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http', [CLIENT_ADDRESS_HEADER]: '203.0.113.9', 'x-forwarded-host': 'gw.example.com' })
  t.same(asRecord(policy.headers(request('10.1.2.3', spoofed), false)), { 'x-forwarded-for': '198.51.100.7, 10.1.2.3', 'x-forwarded-proto': 'https', [CLIENT_ADDRESS_HEADER]: '198.51.100.7', 'x-forwarded-host': 'evil.example.com' })
})
