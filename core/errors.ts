import type { ErrorCode } from './error-codes.ts'

/** Base of every fault Keygate throws on purpose: carries a stable `code` from `ERROR_CODES`. */
export class KeygateError extends Error {
  readonly code: ErrorCode
  /** Extra members for the problem body (for example `errors` of a validation failure). Never a secret. */
  readonly extra: Readonly<Record<string, unknown>> | undefined
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; extra?: Record<string, unknown> }) {
    super(message ?? code, { cause: options?.cause })
    this.name = 'KeygateError'
    this.code = code
    this.extra = options?.extra
  }
}

/** Thrown when PostgreSQL (server or embedded) cannot be reached or fails a query for infrastructure reasons. */
export class DatabaseUnavailableError extends KeygateError {
  constructor(cause: unknown) {
    super('DATABASE_UNAVAILABLE', 'database unavailable', { cause })
    this.name = 'DatabaseUnavailableError'
  }
}

/** Thrown by request-body validation; `errors` lists each problem with its location. */
export class ValidationError extends KeygateError {
  constructor(readonly errors: ReadonlyArray<{ loc: ReadonlyArray<string | number>; msg: string }>) {
    super('VALIDATION_FAILED', 'validation failed', { extra: { errors } })
    this.name = 'ValidationError'
  }
}

/** Thrown when a configuration file or the environment is invalid; `problems` lists every one. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
  }
}
