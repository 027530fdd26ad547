import { systemClock, type Clock } from './clock.ts'
import { fixedVerdict, type Bucket, type RateCounter, type TakeResult } from './rate-counter.ts'
import { askInOneScript, RELEASE_SCRIPT, type Answer, type Ask, type RedisScriptClient } from './rate-counter-redis-script.ts'
import { LEASE_SHARE, leaseSize, leaseVerdict, limitOf, newLease, redisTime, sliceOf, usable, type Lease } from './rate-lease.ts'
import { verdict, type BucketVerdict } from './rate-limit.ts'

export type { RedisScriptClient } from './rate-counter-redis-script.ts'

/**
 * The rate counter shared by every instance: one Lua script, at most one round trip per request whatever the
 * number of buckets, atomic in Redis. For a bucket whose limit is large enough, the script counts a lease (a
 * share of the limit, `rate-lease.ts`) and the requests after it spend the lease here without a round trip until
 * it is spent, its slice ends, or it goes idle; units not spent go back (with the next lease, or by
 * `RELEASE_SCRIPT`). Requests of a bucket whose lease is under way wait for it once rather than ask again. A bucket
 * whose lease went back unspent asks for what it used next time (see `wanted`): a quiet bucket is not leased units
 * only to give them back. A request its leases serve is decided synchronously.
 * The scripts are in `rate-counter-redis-script.ts`. Time is Redis' own (`TIME`), so instances whose clocks
 * differ still count in the same slices. A sliding bucket is one hash (field: a slice number, value: its count; slices out of the window are
 * deleted as they are met) expiring a window and a slice after its last count; a quota is one counter expiring a
 * day after its period ends. The script decides exactly as `rate-limit.ts` does (`fits`), and answers the
 * counts it read, from which the verdicts are computed here.
 *
 * A key's hash tag (`{…}`) names its subject (a user, an address). Buckets of one request with one tag go in one
 * script, decided together, on one node of a Redis Cluster. Buckets with different tags (a per-address route
 * limit on a key with limits of its own, the one such case) go in one script per tag, in turn, stopping at the
 * first refusal; what the earlier scripts counted is then given back (`RELEASE_SCRIPT`), so a refused request
 * spends nothing there either, though another request may see it counted in between.
 */
export interface RedisRateCounterOptions {
  /** Prefix of every key (KEYGATE_REDIS_PREFIX). */
  prefix: string
  /** Each round trip's duration, seconds (the limiter's Redis latency metric). */
  observe?: (seconds: number) => void
  /** This process' clock: when a lease is spent, and how long it has been idle. */
  clock?: Clock
  /** The share of a limit one lease takes (`LEASE_SHARE`); 0 counts every request in its own round trip. */
  leaseShare?: number
  /** A lease not spent for this long goes back to Redis (checked as often), as does one past its slice. */
  idleMs?: number
  /** Leases held at most; the buckets beyond are counted one request per round trip. */
  maxLeases?: number
  /** How long a bucket whose lease went back unspent keeps asking for what it used rather than a full lease. */
  demandMs?: number
}

/**
 * @throws whatever the client throws when Redis is away or answers an error: the caller decides (it fails open).
 */
export function redisRateCounter(redis: RedisScriptClient, options: RedisRateCounterOptions): RateCounter {
  const { prefix } = options
  const clock = options.clock ?? systemClock
  const share = options.leaseShare ?? LEASE_SHARE
  const idleMs = options.idleMs ?? 1000
  const maxLeases = options.maxLeases ?? 100_000
  const ask = askInOneScript(redis, options)
  // By bucket key: the lease this process holds, and the round trip under way that asks for one.
  const leases = new Map<string, Lease>()
  const asking = new Map<string, Promise<unknown>>()
  // By bucket key, for buckets whose last lease went back unspent: the units to ask for next, and when last asked.
  const demand = new Map<string, { want: number; at: number }>()
  const demandMs = options.demandMs ?? 60_000

  function giveBack(key: string, lease: Lease, units: number): Promise<void> {
    if (units <= 0) return Promise.resolve()
    // Best effort: units not given back leave the window with their slice, or expire with their period.
    return redis.eval(RELEASE_SCRIPT, 1, prefix + key, lease.kind === 'fixed' ? 'f' : String(lease.slice), units).then(() => undefined, () => undefined)
  }

  function spendOne(key: string, lease: Lease, t: number): void {
    lease.units--
    lease.lastUsed = t
    if (lease.units === 0 && leases.get(key) === lease) leases.delete(key)
  }

  /** Puts back one unit taken for a request that was then refused (or whose round trip failed). */
  function unspend(key: string, lease: Lease): void {
    lease.units++
    const held = leases.get(key)
    if (held === lease) return
    if (held === undefined && lease.units === 1) leases.set(key, lease)
    else void giveBack(key, lease, 1)
  }

  function keep(b: Bucket, lease: Lease): void {
    const held = leases.get(b.key)
    if (held && held.kind === lease.kind && held.slice === lease.slice && held.limit === lease.limit && held.span === lease.span) {
      // A grant in the same slice: the newer counts include the older grant; the units add up.
      leases.set(b.key, { ...lease, units: held.units + lease.units, granted: held.granted + lease.granted, until: Math.min(held.until, lease.until) })
      return
    }
    if (held) void giveBack(b.key, held, held.units)
    leases.set(b.key, lease)
  }

  const sweep = setInterval(() => {
    const t = clock.now()
    for (const [key, lease] of leases) {
      if (t >= lease.until || t - lease.lastUsed >= idleMs) {
        leases.delete(key)
        // Units went back unspent: the bucket's next round trips ask for what this lease served, not a full one.
        if (lease.units > 0 && demand.size < maxLeases) demand.set(key, { want: Math.max(1, lease.granted - lease.units), at: t })
        void giveBack(key, lease, lease.units)
      }
    }
    for (const [key, d] of demand) if (t - d.at >= demandMs) demand.delete(key)
  }, idleMs)
  sweep.unref()

  /**
   * The units to ask for a bucket: a full lease, unless its last lease went back mostly unspent (a bucket with a
   * few requests a second): then what that lease served, doubled at each round trip that comes within `idleMs`
   * of the one before, so a quiet bucket costs one round trip per request, not a lease and its give-back.
   */
  function wanted(key: string, full: number, t: number): number {
    const d = demand.get(key)
    if (d === undefined) return full
    const want = Math.min(full, t - d.at < idleMs ? d.want * 2 : d.want)
    if (want >= full) {
      demand.delete(key)
    } else {
      d.want = want
      d.at = t
    }
    return want
  }

  async function roundTrip(buckets: readonly Bucket[], t: number): Promise<TakeResult> {
    const verdicts: Array<BucketVerdict | undefined> = []
    const held: Array<{ key: string; lease: Lease }> = []
    const asks: Ask[] = []
    buckets.forEach((b, i) => {
      const lease = leases.get(b.key)
      if (lease && usable(lease, b, t)) {
        // Its unit is taken now: requests spending the lease meanwhile cannot take it too.
        verdicts[i] = leaseVerdict(b, lease, redisTime(lease, t))
        spendOne(b.key, lease, t)
        held.push({ key: b.key, lease })
        return
      }
      if (lease) leases.delete(b.key)
      asks.push({ b, want: leases.size < maxLeases ? wanted(b.key, leaseSize(limitOf(b), share), t) : 1, ...(lease && lease.units > 0 ? { back: { slice: lease.slice, units: lease.units } } : {}) })
    })
    // Waiting requests of these buckets take their units from this round trip's leases (see `take`).
    let settle!: () => void
    const settled = new Promise<void>((resolve) => { settle = resolve })
    const leasing = asks.filter((a) => a.want > 1 && !asking.has(a.b.key)).map((a) => a.b.key)
    for (const key of leasing) asking.set(key, settled)
    let allowed = true
    let now = t
    const counted: Array<{ group: Ask[]; answer: Answer }> = []
    try {
      for (const group of byHashTag(asks)) {
        const answer = await ask(group)
        now = answer.now
        group.forEach((a, j) => {
          const before = answer.before[j]!
          verdicts[buckets.indexOf(a.b)] = a.b.kind === 'fixed' ? fixedVerdict(a.b, before[0]![1], now) : verdict(a.b.policy, before, now)
        })
        if (!answer.allowed) {
          allowed = false
          break
        }
        counted.push({ group, answer })
      }
      if (!allowed) {
        for (const h of held) unspend(h.key, h.lease)
        // What the earlier scripts counted for this request goes back: a refused request spends nothing.
        for (const { group, answer } of counted) {
          const slices = group.map((a) => (a.b.kind === 'fixed' ? 'f' : String(sliceOf(a.b, answer.now))))
          await redis.eval(RELEASE_SCRIPT, group.length, ...group.map((a) => prefix + a.b.key), ...group.flatMap((a, j) => [slices[j]!, answer.granted[j]!])).catch(() => undefined)
        }
      } else {
        for (const { group, answer } of counted) {
          group.forEach((a, j) => {
            const granted = answer.granted[j]!
            if (granted > 1) keep(a.b, newLease(a.b, answer.before[j]!, granted, granted - 1, answer.now, t, t))
          })
        }
      }
    } catch (err) {
      for (const h of held) unspend(h.key, h.lease)
      throw err
    } finally {
      for (const key of leasing) if (asking.get(key) === settled) asking.delete(key)
      settle()
    }
    // Buckets of groups not asked (after a refusal) are reported as they were not counted: allowed, full.
    const all = buckets.map((b, i) => verdicts[i] ?? notAsked(b))
    // The script decides with the same arithmetic; were they ever to differ, its decision (what was counted) stands.
    if (allowed !== all.every((v) => v.allowed)) {
      return { allowed, now, verdicts: all.map((v) => (allowed ? { ...v, allowed } : { ...v, allowed, remaining: 0, retryAfterMs: Math.max(1, v.retryAfterMs) })) }
    }
    return { allowed, now, verdicts: all }
  }

  /** The request decided on the leases held here, without a round trip; undefined when one of them cannot serve it. */
  function spendLeases(buckets: readonly Bucket[], t: number): TakeResult | undefined {
    for (let i = 0; i < buckets.length; i++) if (!usable(leases.get(buckets[i]!.key), buckets[i]!, t)) return undefined
    let now = t
    const verdicts: BucketVerdict[] = []
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!
      const lease = leases.get(b.key)!
      now = redisTime(lease, t)
      verdicts.push(leaseVerdict(b, lease, now))
      spendOne(b.key, lease, t)
    }
    return { allowed: true, verdicts, now }
  }

  async function waitOrAsk(buckets: readonly Bucket[], t: number): Promise<TakeResult> {
    // A round trip under way brings a lease for these buckets: wait for it once rather than ask again.
    const pending = buckets.map((b) => asking.get(b.key)).filter((p) => p !== undefined)
    if (pending.length === 0) return roundTrip(buckets, t)
    await Promise.all(pending)
    const after = clock.now()
    return spendLeases(buckets, after) ?? roundTrip(buckets, after)
  }

  return {
    // A request its leases serve is decided synchronously: no promise, no round trip.
    take(buckets) {
      const t = clock.now()
      return spendLeases(buckets, t) ?? waitOrAsk(buckets, t)
    },
    async close() {
      clearInterval(sweep)
      demand.clear()
      const all = [...leases]
      leases.clear()
      await Promise.all(all.map(([key, lease]) => giveBack(key, lease, lease.units)))
    },
  }
}

function byHashTag(asks: readonly Ask[]): Ask[][] {
  if (asks.length === 0) return []
  const first = hashTag(asks[0]!.b.key)
  if (asks.every((a) => hashTag(a.b.key) === first)) return [[...asks]]
  const groups = new Map<string, Ask[]>()
  for (const a of asks) {
    const tag = hashTag(a.b.key)
    groups.set(tag, [...(groups.get(tag) ?? []), a])
  }
  return [...groups.values()]
}

function hashTag(key: string): string {
  const open = key.indexOf('{')
  const close = open < 0 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

function notAsked(b: Bucket): BucketVerdict {
  const limit = limitOf(b)
  const windowMs = b.kind === 'sliding' ? b.policy.windowMs : b.periodEnd - b.periodStart
  return { allowed: true, limit, windowMs, remaining: limit, retryAfterMs: 0, resetMs: windowMs }
}
