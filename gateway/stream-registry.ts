import { cacheKeyOf } from '../core/credential-keys.ts'
import type { Invalidation } from '../core/invalidation.ts'
import type { Principal } from './authenticator.ts'

/**
 * Every exchange in flight (long uploads, SSE, WebSockets) by the credential that opened it. When a
 * revocation names that credential or its user, the credential is checked again (its cache entry is already
 * gone, so this asks the store); if it is no longer accepted, the exchange is closed at once instead of
 * living on until it ends by itself. A key rolled with a grace period passes the check and stays open until the
 * grace period ends; an exchange opened with a key that expires, or with an access token, is closed when it expires.
 */
export interface StreamRegistry {
  /** Registers an exchange; call the returned function when it ends. */
  track(principal: Principal, credential: string, close: () => void): () => void
  /** Re-checks the exchanges a revocation concerns; resolves with how many were closed. */
  revoked(message: Invalidation): Promise<number>
  /** Closes every exchange (shutdown). */
  closeAll(): void
  readonly size: number
}

/** `deadline`: when the credential is checked again (clock ms), undefined when it has none within reach. */
interface Entry { principal: Principal; credential: string; close: () => void; deadline: number | undefined }

// setTimeout's longest delay (about 24.8 days); a deadline further away is left to the expiry sweeper.
const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * One timer for the whole registry, armed for the earliest deadline: an exchange costs a set insertion and a
 * deletion, not a timer of its own (every access token has a deadline, so that was a timer per request). When
 * the timer fires, the exchanges whose deadline it was armed for are checked, and it is armed for the next.
 */
export function streamRegistry(deps: {
  /** The credential checked again: its principal now, or undefined when it is no longer accepted. */
  recheck(credential: string): Promise<Principal | undefined>
  onClosed?(entry: { userId: string; reason: string }): void
  /** The clock the credentials' deadlines are read against. */
  now?: () => number
}): StreamRegistry {
  const entries = new Set<Entry>()
  const now = deps.now ?? Date.now
  let timer: NodeJS.Timeout | undefined
  // The deadline the timer is armed for; Infinity when it is not armed.
  let armedFor = Infinity

  /**
   * Checks `entry`'s credential again and closes the exchange unless it is still accepted; when it is, its
   * deadline may have changed (a key rolled meanwhile now ends with its grace period).
   */
  async function recheck(entry: Entry, reason: string): Promise<boolean> {
    let principal: Principal | undefined
    try {
      principal = await deps.recheck(entry.credential)
    } catch {
      // The store cannot answer: the revocation message (or the deadline) is the better evidence.
    }
    if (!entries.has(entry)) return false
    if (principal) {
      schedule(entry, principal.validUntil)
      return false
    }
    untrack(entry)
    entry.close()
    deps.onClosed?.({ userId: entry.principal.userId, reason })
    return true
  }

  /** Sets (or moves) the check at `validUntil`: a few ms after it, so the check sees it ended. */
  function schedule(entry: Entry, validUntil: number | undefined): void {
    entry.deadline = undefined
    if (validUntil === undefined) return
    const at = validUntil + 5
    const delay = at - now()
    if (delay > MAX_DELAY_MS) return
    entry.deadline = at
    if (at < armedFor) arm(at, delay)
  }

  function arm(at: number, delay: number): void {
    if (timer) clearTimeout(timer)
    armedFor = at
    timer = setTimeout(fire, Math.max(0, delay))
    timer.unref()
  }

  /** The timer fired: the exchanges due by the deadline it was armed for are checked; it is armed for the next. */
  function fire(): void {
    const due = armedFor
    timer = undefined
    armedFor = Infinity
    let next = Infinity
    for (const entry of entries) {
      const at = entry.deadline
      if (at === undefined) continue
      if (at <= due) {
        entry.deadline = undefined
        void recheck(entry, 'expired')
      } else if (at < next) {
        next = at
      }
    }
    if (next !== Infinity && next < armedFor) arm(next, next - now())
  }

  function untrack(entry: Entry): void {
    entry.deadline = undefined
    entries.delete(entry)
  }

  return {
    track(principal, credential, close) {
      const entry: Entry = { principal, credential, close, deadline: undefined }
      entries.add(entry)
      // A key that expires, or a rolled key whose grace period ends, while the exchange is open: checked again
      // at that moment, closed then.
      if (principal.validUntil !== undefined) schedule(entry, principal.validUntil)
      return () => untrack(entry)
    },
    async revoked(message) {
      if (message.kind === 'signing-keys') return 0
      const key = cacheKeyOf(message)
      const concerned = [...entries].filter(({ principal: p }) => (message.kind === 'user' ? p.userId === message.userId : p.revocationKey === key))
      const closed = await Promise.all(concerned.map((entry) => recheck(entry, message.kind)))
      return closed.filter(Boolean).length
    },
    closeAll() {
      if (timer) clearTimeout(timer)
      timer = undefined
      armedFor = Infinity
      for (const e of [...entries]) {
        untrack(e)
        e.close()
      }
    },
    get size() { return entries.size },
  }
}
