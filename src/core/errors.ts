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

  constructor(message: string, counts: { answered: number; required: number }, options?: { cause?: unknown }) {
    super('RINGKV_UNAVAILABLE', message, options);
    this.answered = counts.answered;
    this.required = counts.required;
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
