import type { Invalidation } from '../core/invalidation.ts'
import type { Principal } from './authenticator.ts'

/**
 * Every exchange in flight (long uploads, SSE, WebSockets) by the credential that opened it. When a
 * revocation names that credential or its user, the credential is checked again (its cache entry is already
 * gone, so this asks the store); if it is no longer accepted, the exchange is closed at once instead of
 * living on until it ends by itself. A key rolled with a grace period passes the check and stays open.
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

interface Entry { principal: Principal; credential: string; close: () => void }

export function streamRegistry(deps: { stillValid(credential: string): Promise<boolean>; onClosed?(entry: { userId: string; reason: string }): void }): StreamRegistry {
  const entries = new Set<Entry>()
  return {
    track(principal, credential, close) {
      const entry = { principal, credential, close }
      entries.add(entry)
      return () => entries.delete(entry)
    },
    async revoked(message) {
      if (message.kind === 'signing-keys') return 0
      const concerned = [...entries].filter(({ principal: p }) =>
        message.kind === 'user' ? p.userId === message.userId : message.kind === 'key' ? p.revocationKey === `k:${message.keyHash}` : p.revocationKey === `s:${message.sessionId}`)
      let closed = 0
      await Promise.all(concerned.map(async (entry) => {
        let valid = false
        try {
          valid = await deps.stillValid(entry.credential)
        } catch {
          // The store cannot answer: the revocation message is the better evidence.
        }
        if (valid || !entries.has(entry)) return
        entries.delete(entry)
        entry.close()
        closed++
        deps.onClosed?.({ userId: entry.principal.userId, reason: message.kind })
      }))
      return closed
    },
    closeAll() {
      for (const e of entries) e.close()
      entries.clear()
    },
    get size() { return entries.size },
  }
}
