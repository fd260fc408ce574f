/**
 * The error vocabulary of ringkv. A small, closed set of classes with stable
 * codes, so that the front ends (and only they) can map them to `-ERR …`
 * replies and HTTP statuses, and users can match on `code`.
 */

export type ErrorCode =
  | 'RINGKV_NOT_FOUND'
  | 'RINGKV_CORRUPTION'
  | 'RINGKV_IO'
  | 'RINGKV_INVALID_ARGUMENT'
  | 'RINGKV_UNAVAILABLE'
  | 'RINGKV_TIMEOUT'
  | 'RINGKV_OVERLOADED'
  | 'RINGKV_RATE_LIMITED'
  | 'RINGKV_CLOSED'
  | 'RINGKV_CONFLICT'
  | 'RINGKV_UNAUTHORIZED'
  | 'RINGKV_PROTOCOL';

export class RingkvError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A key or object that does not exist. */
export class NotFoundError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_NOT_FOUND', message, options);
  }
}

/** Bytes on disk or on the wire that fail a checksum or do not parse. */
export class CorruptionError extends RingkvError {
  readonly file: string | undefined;
  readonly offset: number | undefined;

  constructor(message: string, where?: { file?: string; offset?: number; cause?: unknown }) {
    super('RINGKV_CORRUPTION', message, where?.cause === undefined ? undefined : { cause: where.cause });
    this.file = where?.file;
    this.offset = where?.offset;
  }
}

/** The operating system refused an I/O operation (disk full, permissions, …). */
export class IoError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_IO', message, options);
  }
}

/** The caller passed something ringkv cannot accept; the message says what and why. */
export class InvalidArgumentError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_INVALID_ARGUMENT', message, options);
  }
}

/** Too few replicas answered; says how many did of how many were needed. */
export class UnavailableError extends RingkvError {
  readonly answered: number;
  readonly required: number;
  /**
   * The request reached the peer before the connection closed, so it may have
   * been carried out: a caller must not send a write that is not idempotent
   * (an increment, a new version) to another node as if it had failed.
   */
  readonly maybeApplied: boolean;

  constructor(message: string, counts: { answered: number; required: number; maybeApplied?: boolean }, options?: { cause?: unknown }) {
    super('RINGKV_UNAVAILABLE', message, options);
    this.answered = counts.answered;
    this.required = counts.required;
    this.maybeApplied = counts.maybeApplied === true;
  }
}

export class TimeoutError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_TIMEOUT', message, options);
  }
}

/** A bounded queue or budget is full; retry later. */
export class OverloadedError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_OVERLOADED', message, options);
  }
}

export class RateLimitedError extends RingkvError {
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number) {
    super('RINGKV_RATE_LIMITED', message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The component was closed; no further operations are accepted. */
export class ClosedError extends RingkvError {
  constructor(message: string) {
    super('RINGKV_CLOSED', message);
  }
}

/** A conditional operation found a state it was not allowed to overwrite. */
export class ConflictError extends RingkvError {
  constructor(message: string) {
    super('RINGKV_CONFLICT', message);
  }
}

export class UnauthorizedError extends RingkvError {
  constructor(message: string) {
    super('RINGKV_UNAUTHORIZED', message);
  }
}

/** A peer or client broke the wire protocol (malformed or oversized frame). */
export class ProtocolError extends RingkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RINGKV_PROTOCOL', message, options);
  }
}

export function isRingkvError(value: unknown): value is RingkvError {
  return value instanceof RingkvError;
}

/** The fields some error classes carry beyond code and message, as plain data. */
export interface ErrorDetails {
  answered?: number;
  required?: number;
  retryAfterMs?: number;
  file?: string;
  offset?: number;
}

/** An error's extra fields, for carrying it across a wire (transport, HTTP, simulator). */
export function errorDetails(error: RingkvError): ErrorDetails {
  if (error instanceof UnavailableError) return { answered: error.answered, required: error.required };
  if (error instanceof RateLimitedError) return { retryAfterMs: error.retryAfterMs };
  if (error instanceof CorruptionError) {
    return { ...(error.file !== undefined ? { file: error.file } : {}), ...(error.offset !== undefined ? { offset: error.offset } : {}) };
  }
  return {};
}

/**
 * Rebuilds a typed error from its stable code, so an error that crossed a wire
 * is the same class on the caller's side. A code this version does not know
 * (a newer peer's) keeps its code on a plain RingkvError.
 */
export function errorFromCode(code: ErrorCode, message: string, details: ErrorDetails = {}): RingkvError {
  switch (code) {
    case 'RINGKV_NOT_FOUND': return new NotFoundError(message);
    case 'RINGKV_CORRUPTION':
      return new CorruptionError(message, { ...(details.file !== undefined ? { file: details.file } : {}), ...(details.offset !== undefined ? { offset: details.offset } : {}) });
    case 'RINGKV_IO': return new IoError(message);
    case 'RINGKV_INVALID_ARGUMENT': return new InvalidArgumentError(message);
    case 'RINGKV_UNAVAILABLE': return new UnavailableError(message, { answered: details.answered ?? 0, required: details.required ?? 0 });
    case 'RINGKV_TIMEOUT': return new TimeoutError(message);
    case 'RINGKV_OVERLOADED': return new OverloadedError(message);
    case 'RINGKV_RATE_LIMITED': return new RateLimitedError(message, details.retryAfterMs ?? 0);
    case 'RINGKV_CLOSED': return new ClosedError(message);
    case 'RINGKV_CONFLICT': return new ConflictError(message);
    case 'RINGKV_UNAUTHORIZED': return new UnauthorizedError(message);
    case 'RINGKV_PROTOCOL': return new ProtocolError(message);
    default: return new RingkvError(code, message);
  }
}

const knownCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'RINGKV_NOT_FOUND', 'RINGKV_CORRUPTION', 'RINGKV_IO', 'RINGKV_INVALID_ARGUMENT', 'RINGKV_UNAVAILABLE', 'RINGKV_TIMEOUT',
  'RINGKV_OVERLOADED', 'RINGKV_RATE_LIMITED', 'RINGKV_CLOSED', 'RINGKV_CONFLICT', 'RINGKV_UNAUTHORIZED', 'RINGKV_PROTOCOL',
]);

export function isKnownErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && knownCodes.has(code);
}
