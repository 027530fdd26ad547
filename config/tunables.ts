/**
 * Internal tunables: the intervals, sizes and timeouts Keygate fixes for itself, in one place with the reason
 * for each. Operators set what `config/schema.ts` declares (environment variables, the route file); these are
 * not settings, they are the values the code is written and tested against. Composition roots pass them to the
 * factories, which take them as arguments.
 */
export const TUNABLES = Object.freeze({
  invalidation: Object.freeze({
    /** How often every instance publishes what the outbox still owes (a failed publish, a process that died). */
    outboxDrainMs: 1000,
    /**
     * Outbox rows younger than this belong to the instance publishing them right now; the drain takes them
     * after, so a healthy publish is not doubled. A crashed instance's announcement is late by about this plus
     * one drain interval.
     */
    outboxSettleMs: 2000,
    /** How long a start waits for a Redis that does not answer before serving without it. */
    redisStartWaitMs: 2000,
    /** How often an instance compares its Redis generation with the deployment's (missed messages → flush). */
    redisGenerationCheckMs: 5000,
    /** How long a revoked credential's shared (Redis) entry stays a tombstone that no lookup may overwrite. */
    tombstoneTtlMs: 10_000,
    /** Pause before the LISTEN/NOTIFY listener reconnects after losing its connection. */
    listenerReconnectMs: 500,
  }),
  signingKeys: Object.freeze({
    /** Database-held signing keys are reloaded this often besides on every rotation message (one may be missed). */
    reloadMs: 30_000,
  }),
  keys: Object.freeze({
    /** How often each instance records `key.expired` for keys whose expiry passed (and tells every cache). */
    expirySweepMs: 60_000,
    /** How often the batched `last_used_at` of API keys is written. */
    usageFlushMs: 10_000,
    /** How often each gateway adds the requests it counted against keys' quotas to PostgreSQL (the listing's `usage`). */
    quotaFlushMs: 10_000,
  }),
  caches: Object.freeze({
    /** Access tokens whose signature verified, remembered by the raw token until their `exp` (per instance). */
    verifiedTokensMax: 50_000,
    /** Well-formed API keys whose hash is remembered by the raw key, so a warm key costs no CRC32 and no SHA-256 (per instance). */
    keyVerdictsMax: 50_000,
    /** The window of the per-address limit on database lookups of unknown API keys. */
    unknownKeyWindowMs: 10_000,
    /**
     * Database lookups of API keys that no cache holds, batched (`core/batch-loader.ts`): at most this many
     * statements out at once (well under the default pool of 10, which the admin API and session checks share)…
     */
    keyLookupsInFlight: 3,
    /** …of at most this many keys each. */
    keyLookupBatchMax: 100,
    /**
     * Reads of the shared (Redis) credential cache, batched into MGET: at most this many out at once (keys read
     * meanwhile wait for the next)…
     */
    sharedReadsInFlight: 4,
    /** …of at most this many keys each. */
    sharedReadBatchMax: 64,
  }),
  http: Object.freeze({
    /**
     * A refused request's unread body up to this size is read and dropped (the connection stays open and the
     * client, still writing, meets no reset); past it, or chunked, the connection closes after the answer.
     */
    discardMaxBytes: 64 * 1024,
  }),
  websocket: Object.freeze({
    /** How long a client told to close (revocation, shutdown) may take before both legs are destroyed. */
    closeTimeoutMs: 1000,
    /** http-proxy's timeout for the upstream's answer to the handshake. */
    proxyTimeoutMs: 30_000,
  }),
  database: Object.freeze({
    /**
     * How long after the statement timeout a query may still wait for its answer before the client gives up on
     * the connection (a network partition: nothing answers, nothing fails; the server's timeout cannot end it).
     */
    queryReadMarginMs: 500,
  }),
  upstream: Object.freeze({
    /** How long an idle upstream connection is kept for the next request. */
    keepAliveMs: 30_000,
    /** Connections per upstream origin. */
    connectionsPerOrigin: 256,
  }),
  shutdown: Object.freeze({
    /** How long the in-process services (admin API, demos) and the metrics listener get to close. */
    internalCloseMs: 1000,
  }),
})

export type Tunables = typeof TUNABLES
