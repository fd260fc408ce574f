/**
 * Errors crossing the simulated network. A remote handler's RingkvError is
 * rebuilt on the caller's side as the same class with the same code and
 * fields, as the TCP transport does, so callers can match on `code` and
 * `instanceof` whichever transport they run over.
 */
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  NotFoundError,
  OverloadedError,
  ProtocolError,
  RateLimitedError,
  RingkvError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  type ErrorCode,
} from '../src/core/index.ts';

export interface WireError {
  readonly name: string;
  readonly code: string | null;
  readonly message: string;
  readonly answered?: number;
  readonly required?: number;
  readonly retryAfterMs?: number;
  readonly file?: string;
  readonly offset?: number;
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof RingkvError) {
    const e = error as RingkvError & Partial<Record<'answered' | 'required' | 'retryAfterMs' | 'offset', number>> & { file?: string };
    return {
      name: e.name,
      code: e.code,
      message: e.message,
      ...(e.answered !== undefined ? { answered: e.answered } : {}),
      ...(e.required !== undefined ? { required: e.required } : {}),
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
      ...(e.file !== undefined ? { file: e.file } : {}),
      ...(e.offset !== undefined ? { offset: e.offset } : {}),
    };
  }
  if (error instanceof Error) return { name: error.name, code: null, message: error.message };
  return { name: 'Error', code: null, message: String(error) };
}

/** Rebuilds the error; a remote failure that was not a RingkvError becomes a ProtocolError naming it. */
export function errorFromWire(wire: WireError): Error {
  const m = wire.message;
  switch (wire.code as ErrorCode | null) {
    case 'RINGKV_NOT_FOUND': return new NotFoundError(m);
    case 'RINGKV_CORRUPTION': return new CorruptionError(m, { ...(wire.file !== undefined ? { file: wire.file } : {}), ...(wire.offset !== undefined ? { offset: wire.offset } : {}) });
    case 'RINGKV_IO': return new IoError(m);
    case 'RINGKV_INVALID_ARGUMENT': return new InvalidArgumentError(m);
    case 'RINGKV_UNAVAILABLE': return new UnavailableError(m, { answered: wire.answered ?? 0, required: wire.required ?? 0 });
    case 'RINGKV_TIMEOUT': return new TimeoutError(m);
    case 'RINGKV_OVERLOADED': return new OverloadedError(m);
    case 'RINGKV_RATE_LIMITED': return new RateLimitedError(m, wire.retryAfterMs ?? 0);
    case 'RINGKV_CLOSED': return new ClosedError(m);
    case 'RINGKV_CONFLICT': return new ConflictError(m);
    case 'RINGKV_UNAUTHORIZED': return new UnauthorizedError(m);
    case 'RINGKV_PROTOCOL': return new ProtocolError(m);
    default: return new ProtocolError(`The remote handler failed with ${wire.name}: ${m}`);
  }
}
