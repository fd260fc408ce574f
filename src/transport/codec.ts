/**
 * Frame bodies are MessagePack (msgpackr, chosen by measurement in
 * TOOLCHAIN.md), except the compact bodies of compact.ts for the hot kv.*
 * messages. Records are off so every frame decodes on its own, and
 * 64-bit integers decode as bigint so vector-clock counters keep their type.
 */
import { Packr, RESET_BUFFER_MODE } from 'msgpackr';
import {
  InvalidArgumentError,
  ProtocolError,
  errorDetails,
  errorFromCode,
  isRingkvError,
  type ErrorCode,
  type ErrorDetails,
  type WireMessage,
} from '../core/index.ts';
import { compactMarker, packCompact, unpackCompact } from './compact.ts';

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true });

/**
 * Encodes into one scratch buffer that the next call overwrites: the result
 * is valid only until the next packBody, so callers copy it (into a
 * connection's write buffer) before packing anything else. Reusing the
 * scratch buffer keeps a fresh 8 KiB off-heap buffer per ~40 messages from
 * piling up external memory, which made V8 run full collections.
 */
export function packBody(value: unknown): Buffer {
  if (isPlainObject(value)) {
    const compact = packCompact(value);
    if (compact !== undefined) return compact;
  }
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
  if (body[0] === compactMarker) return unpackCompact(body);
  const value = unpackBody(body);
  if (!isPlainObject(value) || typeof value.type !== 'string') {
    throw new ProtocolError('Frame body is not a message: expected a map with a string "type" field');
  }
  return value as WireMessage;
}

/** The body of an error frame (wire.md §5). */
export interface ErrorBody extends Readonly<ErrorDetails> {
  /** A RingkvError code, or null for any other error. */
  readonly code: ErrorCode | null;
  readonly message: string;
}

export function errorToBody(error: unknown): ErrorBody {
  if (isRingkvError(error)) return { code: error.code, message: error.message, ...errorDetails(error) };
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
  // A newer peer may send codes we do not know: errorFromCode keeps them on a plain RingkvError.
  if (typeof raw.code !== 'string') return new Error(`Node ${peer} failed the request: ${message}`);
  const details: ErrorDetails = {};
  for (const name of ['answered', 'required', 'retryAfterMs', 'offset'] as const) {
    const value = numberField(raw, name);
    if (value !== undefined) details[name] = value;
  }
  if (typeof raw.file === 'string') details.file = raw.file;
  return errorFromCode(raw.code as ErrorCode, message, details);
}
