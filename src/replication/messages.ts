/**
 * The kv.* inter-node messages (docs/replication.md, "Wire messages", version 1).
 * Objects travel as the versioning codec's bytes, so a node never trusts a
 * peer's structure: every field is checked here and a malformed message is a
 * ProtocolError naming the field.
 */
import type { NodeId, WireMessage } from '../core/index.ts';
import type { ErrorCode } from '../core/index.ts';
import {
  ProtocolError,
  RingkvError,
  UnavailableError,
  errorFromCode,
} from '../core/index.ts';
import type { Consistency } from './api.ts';

/** Version of the kv.* message set; bumped on an incompatible change. */
export const kvProtocolVersion = 1;

export type CoordinateKind = 'put' | 'delete' | 'incr' | 'touch';

/** A client write forwarded to a replica that will coordinate it. */
export interface CoordinateRequest {
  readonly type: 'kv.coordinate';
  /** Unique per client operation, so a duplicated message is applied once. */
  readonly opId: string;
  readonly kind: CoordinateKind;
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly delta: bigint | null;
  readonly context: Uint8Array | null;
  /** put only: supersede everything the coordinating replica holds. */
  readonly overwrite: boolean;
  /** undefined-free on the wire: null means "no expiry", absent-expiry is `keepExpiry`. */
  readonly expiresAtMs: number | null;
  readonly keepExpiry: boolean;
  readonly w: Consistency | null;
  readonly strict: boolean;
  readonly timeoutMs: number;
  /** Data center of the node the client asked: local_quorum counts replicas there. */
  readonly dc: string | null;
  readonly [field: string]: unknown;
}

export interface CoordinateReply {
  readonly type: 'kv.coordinate.reply';
  readonly context: Uint8Array | null;
  readonly count: bigint | null;
  readonly touched: boolean;
  /** The write's own failure (quorum not met, bad input); null on success. */
  readonly error: WireError | null;
  readonly [field: string]: unknown;
}

/** A RingkvError as plain data. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly answered: number | null;
  readonly required: number | null;
}

export function toWireError(error: RingkvError): WireError {
  return {
    code: error.code,
    message: error.message,
    answered: error instanceof UnavailableError ? error.answered : null,
    required: error instanceof UnavailableError ? error.required : null,
  };
}

/** Rebuilds the error class from its code, so callers can match on class or code. */
export function fromWireError(error: WireError): RingkvError {
  return errorFromCode(error.code, error.message, {
    ...(error.answered !== null ? { answered: error.answered } : {}),
    ...(error.required !== null ? { required: error.required } : {}),
  });
}

/** Store this object version (replication, read repair, hint replay). */
export interface ApplyRequest {
  readonly type: 'kv.apply';
  readonly key: Uint8Array;
  readonly object: Uint8Array;
  /** When set, the receiver is a stand-in: it keeps the object as a hint for this owner. */
  readonly hintFor: NodeId | null;
  readonly [field: string]: unknown;
}

export interface ReadRequest {
  readonly type: 'kv.read';
  readonly key: Uint8Array;
  readonly [field: string]: unknown;
}

export interface ReadReply {
  readonly type: 'kv.read.reply';
  /** Encoded object, null when this replica has nothing for the key. */
  readonly object: Uint8Array | null;
  readonly [field: string]: unknown;
}

/** Live keys of slots [fromSlot, toSlot) after a position, in storage order. */
export interface ScanRequest {
  readonly type: 'kv.scan';
  readonly fromSlot: number;
  readonly toSlot: number;
  /** Continue after this (slot, key); null: from the start of fromSlot. */
  readonly afterSlot: number | null;
  readonly afterKey: Uint8Array | null;
  readonly count: number;
  readonly [field: string]: unknown;
}

export interface ScanReply {
  readonly type: 'kv.scan.reply';
  /** The slot of each key. */
  readonly slots: number[];
  readonly keys: Uint8Array[];
  /** True when the range holds no further live keys. */
  readonly done: boolean;
  readonly [field: string]: unknown;
}

export interface CountRequest {
  readonly type: 'kv.count';
  readonly [field: string]: unknown;
}

export interface CountReply {
  readonly type: 'kv.count.reply';
  readonly count: number;
  readonly [field: string]: unknown;
}

export interface FlushRequest {
  readonly type: 'kv.flush';
  readonly [field: string]: unknown;
}

export interface AckReply {
  readonly type: 'kv.ack';
  readonly [field: string]: unknown;
}

export type KvRequest = CoordinateRequest | ApplyRequest | ReadRequest | ScanRequest | CountRequest | FlushRequest;

// ---------------------------------------------------------------- field checks

function bad(message: WireMessage, field: string, expected: string): ProtocolError {
  return new ProtocolError(`Malformed ${String(message.type)} message: field "${field}" must be ${expected}`);
}

function bytesField(message: WireMessage, field: string): Uint8Array {
  const value = message[field];
  if (!(value instanceof Uint8Array)) throw bad(message, field, 'bytes');
  return value;
}

function optionalBytes(message: WireMessage, field: string): Uint8Array | null {
  const value = message[field];
  if (value === null || value === undefined) return null;
  if (!(value instanceof Uint8Array)) throw bad(message, field, 'bytes or null');
  return value;
}

function optionalString(message: WireMessage, field: string): string | null {
  const value = message[field];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw bad(message, field, 'a string or null');
  return value;
}

function intField(message: WireMessage, field: string, min: number): number {
  const value = message[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw bad(message, field, `an integer ≥ ${min}`);
  return value;
}

function optionalNumber(message: WireMessage, field: string): number | null {
  const value = message[field];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(message, field, 'a number or null');
  return value;
}

function consistencyField(message: WireMessage, field: string): Consistency | null {
  const value = message[field];
  if (value === null || value === undefined) return null;
  if (value === 'one' || value === 'quorum' || value === 'all' || value === 'local_quorum') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  throw bad(message, field, 'one, quorum, all, local_quorum or a positive integer');
}

/** Checks an incoming kv.* request; throws ProtocolError when it does not parse. */
export function parseKvRequest(message: WireMessage): KvRequest {
  switch (message.type) {
    case 'kv.coordinate': {
      const kind = message.kind;
      if (kind !== 'put' && kind !== 'delete' && kind !== 'incr' && kind !== 'touch') throw bad(message, 'kind', 'put, delete, incr or touch');
      if (typeof message.opId !== 'string' || message.opId.length === 0) throw bad(message, 'opId', 'a non-empty string');
      const delta = message.delta;
      if (delta !== null && delta !== undefined && typeof delta !== 'bigint') throw bad(message, 'delta', 'a bigint or null');
      if (kind === 'incr' && typeof delta !== 'bigint') throw bad(message, 'delta', 'a bigint for incr');
      const value = optionalBytes(message, 'value');
      if (kind === 'put' && value === null) throw bad(message, 'value', 'bytes for put');
      return {
        type: 'kv.coordinate',
        opId: message.opId,
        kind,
        key: bytesField(message, 'key'),
        value,
        delta: typeof delta === 'bigint' ? delta : null,
        context: optionalBytes(message, 'context'),
        overwrite: message.overwrite === true,
        expiresAtMs: optionalNumber(message, 'expiresAtMs'),
        keepExpiry: message.keepExpiry === true,
        w: consistencyField(message, 'w'),
        strict: message.strict === true,
        timeoutMs: intField(message, 'timeoutMs', 1),
        dc: optionalString(message, 'dc'),
      };
    }
    case 'kv.apply': {
      const hintFor = message.hintFor;
      if (hintFor !== null && hintFor !== undefined && typeof hintFor !== 'string') throw bad(message, 'hintFor', 'a node id or null');
      return { type: 'kv.apply', key: bytesField(message, 'key'), object: bytesField(message, 'object'), hintFor: hintFor ?? null };
    }
    case 'kv.read':
      return { type: 'kv.read', key: bytesField(message, 'key') };
    case 'kv.scan': {
      const afterSlot = message.afterSlot;
      if (afterSlot !== null && afterSlot !== undefined && (typeof afterSlot !== 'number' || !Number.isInteger(afterSlot))) {
        throw bad(message, 'afterSlot', 'an integer or null');
      }
      return {
        type: 'kv.scan',
        fromSlot: intField(message, 'fromSlot', 0),
        toSlot: intField(message, 'toSlot', 0),
        afterSlot: afterSlot ?? null,
        afterKey: optionalBytes(message, 'afterKey'),
        count: intField(message, 'count', 1),
      };
    }
    case 'kv.count':
      return { type: 'kv.count' };
    case 'kv.flush':
      return { type: 'kv.flush' };
    default:
      throw new ProtocolError(`Unknown kv message type "${String(message.type)}"`);
  }
}

export function parseReadReply(message: WireMessage): ReadReply {
  if (message.type !== 'kv.read.reply') throw new ProtocolError(`Expected kv.read.reply, got "${String(message.type)}"`);
  return { type: 'kv.read.reply', object: optionalBytes(message, 'object') };
}

/** A coordinate reply; its `error`, when set, is rebuilt as a RingkvError. */
export function parseCoordinateReply(message: WireMessage): { context: Uint8Array | null; count: bigint | null; touched: boolean; error: RingkvError | null } {
  if (message.type !== 'kv.coordinate.reply') throw new ProtocolError(`Expected kv.coordinate.reply, got "${String(message.type)}"`);
  const count = message.count;
  if (count !== null && count !== undefined && typeof count !== 'bigint') throw bad(message, 'count', 'a bigint or null');
  const error = message.error;
  let parsed: RingkvError | null = null;
  if (error !== null && error !== undefined) {
    const e = error as Partial<WireError>;
    if (typeof e !== 'object' || typeof e.code !== 'string' || typeof e.message !== 'string') throw bad(message, 'error', 'an object with code and message');
    parsed = fromWireError({ code: e.code, message: e.message, answered: typeof e.answered === 'number' ? e.answered : null, required: typeof e.required === 'number' ? e.required : null });
  }
  return { context: optionalBytes(message, 'context'), count: count ?? null, touched: message.touched === true, error: parsed };
}

export function parseScanReply(message: WireMessage): ScanReply {
  if (message.type !== 'kv.scan.reply') throw new ProtocolError(`Expected kv.scan.reply, got "${String(message.type)}"`);
  const { slots, keys } = message;
  if (!Array.isArray(slots) || !slots.every((p) => typeof p === 'number')) throw bad(message, 'slots', 'an array of integers');
  if (!Array.isArray(keys) || !keys.every((k) => k instanceof Uint8Array) || keys.length !== slots.length) {
    throw bad(message, 'keys', 'an array of byte strings as long as slots');
  }
  return { type: 'kv.scan.reply', slots: slots as number[], keys: keys as Uint8Array[], done: message.done === true };
}

export function parseCountReply(message: WireMessage): CountReply {
  if (message.type !== 'kv.count.reply') throw new ProtocolError(`Expected kv.count.reply, got "${String(message.type)}"`);
  return { type: 'kv.count.reply', count: intField(message, 'count', 0) };
}

/** Frozen, so the transport can reuse its encoding (tcp-transport.ts). */
export const kvAck: AckReply = Object.freeze({ type: 'kv.ack' });
