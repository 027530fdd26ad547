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

interface Entry { principal: Principal; credential: string; close: () => void; deadline?: NodeJS.Timeout }

// setTimeout's longest delay (about 24.8 days); a deadline further away is left to the expiry sweeper.
const MAX_DELAY_MS = 2 ** 31 - 1

export function streamRegistry(deps: {
  /** The credential checked again: its principal now, or undefined when it is no longer accepted. */
  recheck(credential: string): Promise<Principal | undefined>
  onClosed?(entry: { userId: string; reason: string }): void
  /** The clock the credentials' deadlines are read against. */
  now?: () => number
}): StreamRegistry {
  const entries = new Set<Entry>()
  const now = deps.now ?? Date.now

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

  /** Arms (or re-arms) the check at `validUntil`. */
  function schedule(entry: Entry, validUntil: number | undefined): void {
    if (entry.deadline) clearTimeout(entry.deadline)
    entry.deadline = undefined
    if (validUntil === undefined) return
    const delay = validUntil - now() + 5
    if (delay > MAX_DELAY_MS) return
    entry.deadline = setTimeout(() => { void recheck(entry, 'expired') }, Math.max(0, delay))
    entry.deadline.unref()
  }

  function untrack(entry: Entry): void {
    if (entry.deadline) clearTimeout(entry.deadline)
    entries.delete(entry)
  }

  return {
    track(principal, credential, close) {
      const entry: Entry = { principal, credential, close }
      entries.add(entry)
      // A key that expires, or a rolled key whose grace period ends, while the exchange is open: checked again
      // at that moment (a few ms after, so the check sees it ended), closed then.
      schedule(entry, principal.validUntil)
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
      for (const e of [...entries]) {
        untrack(e)
        e.close()
      }
    },
    get size() { return entries.size },
  }
}
