import t from 'tap'
import type { Bucket } from '../../../core/rate-counter.ts'
import { leaseSize, leaseVerdict, newLease, redisTime, usable } from '../../../core/rate-lease.ts'
import { verdict, type WindowState } from '../../../core/rate-limit.ts'

const MINUTE = 60_000
const perMinute = (limit: number): Bucket => ({ kind: 'sliding', key: 'b', policy: { limit, windowMs: MINUTE } })
// A slice is 6 s; Redis' clock at 10 s into slice 1000 (a multiple of 6 s plus 4 s), this process' clock elsewhere.
const redisAt = 1000 * 6_000 + 4_000
const sentAt = 5_000_000

t.test('a lease is 1 % of the limit, at least one request: small limits are counted one request at a time', async (t) => {
  t.same([1, 100, 199, 200, 1000, 1_000_000].map((limit) => leaseSize(limit)), [1, 1, 1, 2, 10, 10_000])
  t.equal(leaseSize(1_000_000, 0), 1, 'a share of 0 turns leases off')
})

t.test('a lease is spent only while Redis is still in the slice it was counted in', async (t) => {
  const b = perMinute(1000)
  const lease = newLease(b, [], 10, 9, redisAt, sentAt, sentAt)
  // Redis' clock reached `redisAt` after the call was sent: at `sentAt + 2000` it is at most at the slice's end.
  t.ok(usable(lease, b, sentAt + 1_997), 'just before the slice ends (a 2 ms margin for both clocks\' rounding)')
  t.notOk(usable(lease, b, sentAt + 1_998), 'not once Redis may have reached the next slice')
  t.equal(redisTime(lease, sentAt + 1_000), redisAt + 1_000)
})

t.test('a lease taken under one policy is not spent under another, nor once spent', async (t) => {
  const b = perMinute(1000)
  const lease = newLease(b, [], 10, 9, redisAt, sentAt, sentAt)
  t.ok(usable(lease, b, sentAt))
  t.notOk(usable(lease, perMinute(500), sentAt), 'a lowered limit')
  t.notOk(usable(lease, { kind: 'sliding', key: 'b', policy: { limit: 1000, windowMs: 2 * MINUTE } }, sentAt), 'another window')
  lease.units = 0
  t.notOk(usable(lease, b, sentAt), 'no unit left')
})

t.test('a request on a lease gets the verdict the script would have given it, the units held here not counted', async (t) => {
  const b = perMinute(1000)
  if (b.kind !== 'sliding') throw new Error('sliding')
  const before: WindowState = [[995, 40], [1000, 5]]
  const lease = newLease(b, before, 10, 9, redisAt, sentAt, sentAt)
  // The first of the ten went with the grant (45 counted before it); the next one sees 46 counted.
  const v = leaseVerdict(b, lease, redisAt + 100)
  t.same(v, verdict(b.policy, [[995, 40], [1000, 6]], redisAt + 100))
  t.equal(v.remaining, 1000 - 46 - 1)
  t.equal(v.allowed, true)
  // Slice 995 leaves the window when slice 1006 begins; a lease never outlives its slice, but its verdict slides.
  t.equal(leaseVerdict(b, lease, 1006 * 6_000).remaining, 1000 - 6 - 1, 'the window slides under a lease')
})

t.test('a quota\'s lease counts its period, and a request on it sees the quota less the units held here', async (t) => {
  const start = Date.UTC(2026, 11, 5)
  const quota: Bucket = { kind: 'fixed', key: 'q', limit: 10_000, periodStart: start, periodEnd: start + 86_400_000 }
  const lease = newLease(quota, [[0, 700]], 100, 99, start + 1_000, sentAt, sentAt)
  t.equal(leaseVerdict(quota, lease, start + 2_000).remaining, 10_000 - 701 - 1)
  t.ok(usable(lease, quota, sentAt + 86_400_000 - 1_000 - 3))
  t.notOk(usable(lease, quota, sentAt + 86_400_000 - 1_000 - 2), 'not past the period\'s end')
})

t.test('a lease\'s verdict, summed in place, is the one the rebuilt window gives, whatever the state and the time', async (t) => {
  const b = perMinute(500)
  if (b.kind !== 'sliding') throw new Error('sliding')
  // A fixed seed: the same cases on every run.
  let seed = 7
  const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n
  for (let i = 0; i < 2000; i++) {
    const slice = 1000
    const before: Array<[number, number]> = []
    for (let m = slice - 12; m < slice; m++) if (random(3) > 0) before.push([m, random(60)])
    if (random(2) > 0) before.push([slice, random(40)])
    const granted = 1 + random(20)
    const units = random(granted + 1)
    const lease = newLease(b, before, granted, units, slice * 6_000 + random(6_000), sentAt, sentAt)
    const now = (slice + random(3)) * 6_000 + random(6_000)
    const rebuilt = before.map(([m, c]): [number, number] => [m, m === slice ? c + granted - units : c])
    if (!before.some(([m]) => m === slice)) rebuilt.push([slice, granted - units])
    t.same(leaseVerdict(b, lease, now), verdict(b.policy, rebuilt.filter(([m]) => m >= Math.floor(now / 6_000) - 10), now), `case ${i}`)
  }
})
