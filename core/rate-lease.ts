import { fixedVerdict, type Bucket } from './rate-counter.ts'
import { allowedVerdict, sliceMs, slide, SUB_WINDOWS, verdict, type BucketVerdict, type WindowState } from './rate-limit.ts'

/**
 * A lease: part of a bucket's budget counted in Redis ahead of its requests (`rate-counter-redis.ts`), then spent
 * by this instance one request at a time without a round trip. What makes it exact:
 *   - a request is let through only on a unit already counted in Redis, so every instance together never lets
 *     through more than the limit; what a lease costs is the other way round: units one instance holds and has not
 *     spent are counted for the others, so they may refuse up to `lease × instances` requests a window too early;
 *   - the units are counted in the slice of the window the lease was taken in, and spent only while Redis' clock
 *     is still in that slice (a sliding bucket) or in that period (a quota), so each request is counted where it
 *     would have been one round trip at a time, and the window slides as it did;
 *   - units not spent go back to Redis (with the bucket's next lease, by the sweep of idle leases, or on close),
 *     so they are not counted twice.
 * A lease is `LEASE_SHARE` of the limit, at least 1 (a limit under 200 is counted one request per round trip, as
 * exact as without leases) and never more than what is left of the budget.
 */
export interface Lease {
  readonly kind: Bucket['kind']
  /** The slice of the window (a sliding bucket) the units were counted in; a quota's is 0. */
  readonly slice: number
  /** Counted in Redis, not yet spent here. */
  units: number
  /** Counted in Redis for it, the request that took it included: `granted - units` of them were spent. */
  readonly granted: number
  /** The bucket's counts in Redis right after the grant (the grant's units included), by slice; a quota's: `[[0, count]]`. */
  state: WindowState
  /** The policy it was taken under (limit; window, or the quota period's end): another policy takes another lease. */
  readonly limit: number
  readonly span: number
  /** Redis' time of the grant, and this process' (`Clock`) when the call was sent: Redis' time now is at most `redisAt + (t - sentAt)`. */
  readonly redisAt: number
  readonly sentAt: number
  /** This process' time from which the lease is no longer spent (Redis may have left its slice or period). */
  readonly until: number
  /** This process' time of its last spend (the sweep returns idle leases). */
  lastUsed: number
}

/** The share of a limit one lease takes. */
export const LEASE_SHARE = 0.01

/** Milliseconds a lease stops short of its slice's end: both clocks are read to the millisecond. */
const CLOCK_MARGIN_MS = 2

/** The units asked for a bucket of `limit` (the script grants fewer when less is left). */
export function leaseSize(limit: number, share = LEASE_SHARE): number {
  return Math.max(1, Math.floor(limit * share))
}

export const limitOf = (b: Bucket): number => (b.kind === 'sliding' ? b.policy.limit : b.limit)
export const spanOf = (b: Bucket): number => (b.kind === 'sliding' ? b.policy.windowMs : b.periodEnd)

/** The slice a sliding bucket's request at Redis time `now` is counted in; a quota's is 0. */
export function sliceOf(b: Bucket, now: number): number {
  return b.kind === 'sliding' ? Math.floor(now / sliceMs(b.policy)) : 0
}

/**
 * The lease of `units` from a grant at Redis time `redisAt`, asked at `sentAt`: `before` is the bucket's counts
 * the script read (the grant not included).
 */
export function newLease(b: Bucket, before: WindowState, granted: number, units: number, redisAt: number, sentAt: number, t: number): Lease {
  const slice = sliceOf(b, redisAt)
  const end = b.kind === 'sliding' ? (slice + 1) * sliceMs(b.policy) : b.periodEnd
  return { kind: b.kind, slice, units, granted, state: withCount(before, slice, granted), limit: limitOf(b), span: spanOf(b), redisAt, sentAt, until: sentAt + (end - redisAt) - CLOCK_MARGIN_MS, lastUsed: t }
}

/** Whether `lease` can let one request of `b` through at this process' time `t`. */
export function usable(lease: Lease | undefined, b: Bucket, t: number): boolean {
  return lease !== undefined && lease.units > 0 && t < lease.until && lease.limit === limitOf(b) && lease.span === spanOf(b)
}

/** Redis' time at this process' time `t`, as the lease knows it (an upper bound). */
export function redisTime(lease: Lease, t: number): number {
  return lease.redisAt + (t - lease.sentAt)
}

/**
 * The verdict on one request spending one unit of `lease` (not yet taken off): as the script would have given it,
 * the units still held here counted as not spent.
 */
export function leaseVerdict(b: Bucket, lease: Lease, now: number): BucketVerdict {
  if (b.kind === 'fixed') return fixedVerdict(b, lease.state[0]![1] - lease.units, now)
  // Every request spending a lease asks this: the counts are summed in place rather than the state rebuilt
  // (`withCount`, `slide`), which the refusal alone still does.
  const { policy } = b
  const oldest = Math.floor(now / sliceMs(policy)) - SUB_WINDOWS
  let used = 0
  let first: number | undefined
  let found = false
  const { state, slice } = lease
  for (let i = 0; i < state.length; i++) {
    const m = state[i]![0]
    if (m === slice) found = true
    if (m < oldest) continue
    first ??= m
    used += m === slice ? state[i]![1] - lease.units : state[i]![1]
  }
  if (!found && slice >= oldest) {
    first ??= slice
    used -= lease.units
  }
  if (used + 1 <= policy.limit) return allowedVerdict(policy, used, first, now)
  return verdict(policy, slide(withCount(lease.state, lease.slice, -lease.units), policy, now), now)
}

/** `s` with `add` more counted in `slice` (appended when `s` has no such slice: it is the newest). */
function withCount(s: WindowState, slice: number, add: number): WindowState {
  const out: Array<readonly [number, number]> = []
  let found = false
  for (const [m, c] of s) {
    if (m === slice) {
      found = true
      out.push([m, c + add])
    } else {
      out.push([m, c])
    }
  }
  if (!found) out.push([slice, add])
  return out
}
