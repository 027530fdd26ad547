import { createHmac } from 'node:crypto'
import t from 'tap'
import { manualClock } from '../../../core/clock.ts'
import { clientAddressProof } from '../../../core/client-address-proof.ts'

const secret = Buffer.alloc(32, 7)
const expected = (address: string, sec: number) => `${sec}.${createHmac('sha256', secret).update(`${address}|${sec}`).digest('base64url')}`

t.test('a proof is the HMAC of the address and the current second, the same whether or not it was signed before in that second', async (t) => {
  const clock = manualClock(1_700_000_000_250)
  const proof = clientAddressProof({ clock, secret })
  t.equal(proof.sign('10.0.0.1'), expected('10.0.0.1', 1_700_000_000))
  t.equal(proof.sign('10.0.0.1'), expected('10.0.0.1', 1_700_000_000), 'signed again in the same second')
  t.equal(proof.sign('10.0.0.2'), expected('10.0.0.2', 1_700_000_000), 'another address gets its own proof')
  clock.advance(800)
  t.equal(proof.sign('10.0.0.1'), expected('10.0.0.1', 1_700_000_001), 'the next second signs anew')
  t.ok(proof.verify('10.0.0.1', proof.sign('10.0.0.1')))
  t.notOk(proof.verify('10.0.0.2', proof.sign('10.0.0.1')), 'a proof does not vouch for another address')
  clock.advance(31_000)
  t.notOk(proof.verify('10.0.0.1', expected('10.0.0.1', 1_700_000_001)), 'a stale proof is refused')
})

t.test('past the remembered addresses of a second, proofs are still made, and correct', async (t) => {
  const clock = manualClock(1_700_000_000_000)
  const proof = clientAddressProof({ clock, secret })
  for (let i = 0; i < 5000; i++) proof.sign(`10.0.${i >> 8}.${i & 255}`)
  t.equal(proof.sign('192.168.1.1'), expected('192.168.1.1', 1_700_000_000))
})
