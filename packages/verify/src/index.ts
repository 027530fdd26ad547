/**
 * `@keygate/verify`: what an upstream service imports to trust the identity Keygate injects.
 * Self-contained (Node's crypto and fetch only): installing it adds no other package to a service.
 */
export { verifyIdentity, type KeygateIdentity, type IdentityDenialCode, type IdentityVerdict, type VerifyIdentityOptions } from './verify-identity.ts'
export { requireIdentity, IDENTITY_HEADER, type IdentifiedRequest } from './middleware.ts'
export { remoteKeySource, staticKeySource, JwksUnavailableError, type KeySource, type PublicJwk } from './jwks-source.ts'
