/**
 * Compact bodies for the four kv.* messages every client operation sends
 * (docs/protocol/wire.md §5.1, protocol version 2): kv.read, kv.read.reply,
 * kv.apply and kv.ack. They are fixed layouts of byte strings, so a
 * hand-written encoding is cheaper than msgpack's generic walk of a map, and
 * decoding builds each message with one object shape. Every other body stays
 * MessagePack.
 *
 * A compact body starts with 0xc1, the one byte MessagePack never uses, so a
 * receiver tells the two apart by the first byte alone.
 */
import { ProtocolError, type WireMessage } from '../core/index.ts';

/** First byte of a compact body: MessagePack's "never used" code. */
export const compactMarker = 0xc1;

/** Second byte: which message the body holds. */
export const CompactKind = {
  read: 1,
  readReply: 2,
  apply: 3,
  ack: 4,
} as const;

/** Length prefix meaning "null" (bytes fields), and for u16 strings. */
const nullBytes32 = 0xffffffff;
const nullString16 = 0xffff;
/** Node ids are short; a longer hintFor goes as MessagePack. */
const maxCompactStringBytes = 0xfffe;

type Fields = Readonly<Record<string, unknown>>;

/** Own enumerable fields of a message, counted without allocating a key array. */
function fieldCount(message: Fields): number {
  let n = 0;
  for (const name in message) if (Object.hasOwn(message, name)) n++;
  return n;
}

/** Bodies up to this size are built in one reused buffer; a larger one gets its own, so one big value does not pin memory for good. */
const scratchBytes = 64 * 1024;
const scratch = Buffer.allocUnsafe(scratchBytes);

function room(bytes: number): Buffer {
  return bytes <= scratchBytes ? scratch : Buffer.allocUnsafe(bytes);
}

function putBytes(buf: Buffer, at: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    buf.writeUInt32BE(nullBytes32, at);
    return at + 4;
  }
  buf.writeUInt32BE(bytes.length, at);
  buf.set(bytes, at + 4);
  return at + 4 + bytes.length;
}

/**
 * The compact body of `message`, or undefined when it is not one of the four
 * messages in exactly their shape (any extra or missing field: MessagePack
 * carries it instead). Like packBody, the result is a scratch buffer valid
 * until the next call.
 */
export function packCompact(message: Fields): Buffer | undefined {
  switch (message.type) {
    case 'kv.read': {
      const key = message.key;
      if (!(key instanceof Uint8Array) || fieldCount(message) !== 2) return undefined;
      const buf = room(2 + 4 + key.length);
      buf[0] = compactMarker;
      buf[1] = CompactKind.read;
      return buf.subarray(0, putBytes(buf, 2, key));
    }
    case 'kv.read.reply': {
      const object = message.object;
      if (!(object instanceof Uint8Array || object === null) || fieldCount(message) !== 2) return undefined;
      const buf = room(2 + 4 + (object?.length ?? 0));
      buf[0] = compactMarker;
      buf[1] = CompactKind.readReply;
      return buf.subarray(0, putBytes(buf, 2, object));
    }
    case 'kv.apply': {
      const { key, object, hintFor } = message;
      if (!(key instanceof Uint8Array) || !(object instanceof Uint8Array) || !(hintFor === null || typeof hintFor === 'string')) return undefined;
      if (fieldCount(message) !== 4) return undefined;
      const hintBytes = hintFor === null ? 0 : Buffer.byteLength(hintFor, 'utf8');
      if (hintBytes > maxCompactStringBytes) return undefined;
      const buf = room(2 + 4 + key.length + 4 + object.length + 2 + hintBytes);
      buf[0] = compactMarker;
      buf[1] = CompactKind.apply;
      let at = putBytes(buf, 2, key);
      at = putBytes(buf, at, object);
      if (hintFor === null) {
        buf.writeUInt16BE(nullString16, at);
        at += 2;
      } else {
        buf.writeUInt16BE(hintBytes, at);
        at += 2 + buf.write(hintFor, at + 2, 'utf8');
      }
      return buf.subarray(0, at);
    }
    case 'kv.ack': {
      if (fieldCount(message) !== 1) return undefined;
      const buf = room(2);
      buf[0] = compactMarker;
      buf[1] = CompactKind.ack;
      return buf.subarray(0, 2);
    }
    default:
      return undefined;
  }
}

function truncated(kind: string): ProtocolError {
  return new ProtocolError(`Compact ${kind} body is truncated or has bytes past its end`);
}

/** Reads a u32-prefixed byte string at `at`: a view into `body` (frame bodies are buffers of their own). */
function readBytes(body: Buffer, at: number, kind: string, nullable: boolean): { value: Uint8Array | null; end: number } {
  if (at + 4 > body.length) throw truncated(kind);
  const length = body.readUInt32BE(at);
  if (length === nullBytes32) {
    if (!nullable) throw new ProtocolError(`Compact ${kind} body has a null where bytes are required`);
    return { value: null, end: at + 4 };
  }
  const end = at + 4 + length;
  if (end > body.length) throw truncated(kind);
  return { value: body.subarray(at + 4, end), end };
}

/** Decodes a body that starts with compactMarker; throws ProtocolError when it is malformed. */
export function unpackCompact(body: Buffer): WireMessage {
  switch (body[1]) {
    case CompactKind.read: {
      const key = readBytes(body, 2, 'kv.read', false);
      if (key.end !== body.length) throw truncated('kv.read');
      return { type: 'kv.read', key: key.value };
    }
    case CompactKind.readReply: {
      const object = readBytes(body, 2, 'kv.read.reply', true);
      if (object.end !== body.length) throw truncated('kv.read.reply');
      return { type: 'kv.read.reply', object: object.value };
    }
    case CompactKind.apply: {
      const key = readBytes(body, 2, 'kv.apply', false);
      const object = readBytes(body, key.end, 'kv.apply', false);
      let at = object.end;
      if (at + 2 > body.length) throw truncated('kv.apply');
      const hintBytes = body.readUInt16BE(at);
      at += 2;
      let hintFor: string | null = null;
      if (hintBytes !== nullString16) {
        if (at + hintBytes > body.length) throw truncated('kv.apply');
        hintFor = body.toString('utf8', at, at + hintBytes);
        at += hintBytes;
      }
      if (at !== body.length) throw truncated('kv.apply');
      return { type: 'kv.apply', key: key.value, object: object.value, hintFor };
    }
    case CompactKind.ack:
      if (body.length !== 2) throw truncated('kv.ack');
      return { type: 'kv.ack' };
    default:
      throw new ProtocolError(`Compact body of unknown kind ${String(body[1])}`);
  }
}
