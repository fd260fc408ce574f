/**
 * Frame bodies are MessagePack (msgpackr, chosen by measurement in
 * TOOLCHAIN.md). Records are off so every frame decodes on its own, and
 * 64-bit integers decode as bigint so vector-clock counters keep their type.
 */
import { Packr, RESET_BUFFER_MODE } from 'msgpackr';
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
  isRingkvError,
  type ErrorCode,
  type WireMessage,
} from '../core/index.ts';

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true });

/**
 * Encodes into one scratch buffer that the next call overwrites: the result
 * is valid only until the next packBody, so callers copy it (into a
 * connection's write buffer) before packing anything else. Reusing the
 * scratch buffer keeps a fresh 8 KiB off-heap buffer per ~40 messages from
 * piling up external memory, which made V8 run full collections.
 */
export function packBody(value: unknown): Buffer {
  try {
    return packr.pack(value, RESET_BUFFER_MODE);
  } catch (error) {
    throw new InvalidArgumentError(`Cannot encode the message: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Decoded Uint8Arrays are views into `body`. Frame bodies from the decoder
 * are buffers of their own (frame.ts), so a decoded value pins at most its
 * frame, never a socket read chunk; that is cheaper than msgpackr's
 * copyBuffers, which allocates one ArrayBuffer per decoded value.
 */
export function unpackBody(body: Buffer): unknown {
  try {
    return packr.unpack(body);
  } catch (error) {
    throw new ProtocolError(`Frame body is not valid MessagePack: ${(error as Error).message}`, { cause: error });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Decodes a message, request or reply body: a map with a string `type`. */
export function decodeWireMessage(body: Buffer): WireMessage {
  const value = unpackBody(body);
  if (!isPlainObject(value) || typeof value.type !== 'string') {
    throw new ProtocolError('Frame body is not a message: expected a map with a string "type" field');
  }
  return value as WireMessage;
}

/** The body of an error frame (wire.md §5). */
export interface ErrorBody {
  /** A RingkvError code, or null for any other error. */
  readonly code: ErrorCode | null;
  readonly message: string;
  readonly answered?: number;
  readonly required?: number;
  readonly retryAfterMs?: number;
  readonly file?: string;
  readonly offset?: number;
}

export function errorToBody(error: unknown): ErrorBody {
  if (isRingkvError(error)) {
    const body: { -readonly [K in keyof ErrorBody]: ErrorBody[K] } = { code: error.code, message: error.message };
    if (error instanceof UnavailableError) {
      body.answered = error.answered;
      body.required = error.required;
    }
    if (error instanceof RateLimitedError) body.retryAfterMs = error.retryAfterMs;
    if (error instanceof CorruptionError) {
      if (error.file !== undefined) body.file = error.file;
      if (error.offset !== undefined) body.offset = error.offset;
    }
    return body;
  }
  return { code: null, message: error instanceof Error ? error.message : String(error) };
}

function numberField(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  return typeof value === 'number' ? value : undefined;
}

/**
 * Rebuilds the error a remote handler threw: the same class and code for a
 * RingkvError, a plain Error naming the peer for anything else.
 */
export function errorFromBody(raw: unknown, peer: string): Error {
  if (!isPlainObject(raw) || typeof raw.message !== 'string') {
    return new ProtocolError(`Node ${peer} sent a malformed error reply`);
  }
  const message = raw.message;
  const code = typeof raw.code === 'string' ? (raw.code as ErrorCode) : null;
  switch (code) {
    case 'RINGKV_NOT_FOUND': return new NotFoundError(message);
    case 'RINGKV_CORRUPTION': {
      const where: { file?: string; offset?: number } = {};
      if (typeof raw.file === 'string') where.file = raw.file;
      const offset = numberField(raw, 'offset');
      if (offset !== undefined) where.offset = offset;
      return new CorruptionError(message, where);
    }
    case 'RINGKV_IO': return new IoError(message);
    case 'RINGKV_INVALID_ARGUMENT': return new InvalidArgumentError(message);
    case 'RINGKV_UNAVAILABLE':
      return new UnavailableError(message, { answered: numberField(raw, 'answered') ?? 0, required: numberField(raw, 'required') ?? 1 });
    case 'RINGKV_TIMEOUT': return new TimeoutError(message);
    case 'RINGKV_OVERLOADED': return new OverloadedError(message);
    case 'RINGKV_RATE_LIMITED': return new RateLimitedError(message, numberField(raw, 'retryAfterMs') ?? 0);
    case 'RINGKV_CLOSED': return new ClosedError(message);
    case 'RINGKV_CONFLICT': return new ConflictError(message);
    case 'RINGKV_UNAUTHORIZED': return new UnauthorizedError(message);
    case 'RINGKV_PROTOCOL': return new ProtocolError(message);
    case null: return new Error(`Node ${peer} failed the request: ${message}`);
    default:
      // A newer peer may know codes we do not: keep its code so callers can still match on it.
      return new RingkvError(code, message);
  }
}
