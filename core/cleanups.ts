/**
 * What a composition root opened, as functions that close it, newest first (each opener `unshift`s its own).
 * `closeAll` runs them in that order; one that fails does not keep the others open.
 */
export type Cleanups = Array<() => Promise<void>>

export async function closeAll(cleanups: Cleanups): Promise<void> {
  for (const close of cleanups) await close().catch(() => {})
}
