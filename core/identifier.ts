/**
 * The one canonical form of a login identifier (a username or an email): Unicode NFKC, then one lowercasing.
 * Storage, lookup and the login attempt counters all use it, so no spelling of an identifier can be looked up
 * as one user and counted as another (`vİctim` lowercases to `vi̇ctim` here, which is no one, and is counted as
 * that same no one; the Kelvin sign in `\u212Aim` folds to `kim` for both).
 *
 * Usernames are limited to ASCII letters, digits, `_` and `-`, and emails to ASCII addresses, so what is stored
 * compares equal under PostgreSQL's `lower()` and JavaScript's `toLowerCase()` alike.
 */
export function canonicalIdentifier(identifier: string): string {
  return identifier.normalize('NFKC').toLowerCase()
}

/** True when `identifier` is looked up as an email: the contract's single login box takes either. */
export function isEmailIdentifier(identifier: string): boolean {
  return identifier.includes('@')
}
