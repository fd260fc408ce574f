/**
 * Little-endian integers and LEB128 varints shared by the WAL, SSTable and
 * manifest encoders (docs/formats/*.md describe where each is used).
 */
import { CorruptionError } from '../core/index.ts';

/** Bytes a varint32 takes. */
export function varintLength(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Writes `value` (0 ≤ value < 2^32) at `offset`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    buf[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[offset++] = value;
  return offset;
}

/**
 * A cursor over bytes with bounds checks: any read past `end` is corruption,
 * reported with the file and the absolute offset.
 */
export class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly file: string,
    readonly baseOffset: number,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new CorruptionError(`Corrupt ${this.file} at offset ${this.baseOffset + this.pos}: ${what}`, {
      file: this.file,
      offset: this.baseOffset + this.pos,
    });
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.buf[this.pos++] as number;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
      if (shift > 28) this.fail('varint longer than 5 bytes');
    }
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('truncated byte');
    return this.buf[this.pos++] as number;
  }

  u32(): number {
    if (this.pos + 4 > this.end) this.fail('truncated u32');
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16)) + (b[p + 3] as number) * 0x1000000;
  }

  /** A u64 that must fit in a JS number (file offsets and sizes). */
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi >= 0x200000) this.fail('u64 larger than 2^53');
    return hi * 0x100000000 + lo;
  }

  /** A view (no copy) of the next `length` bytes. */
  bytes(length: number): Uint8Array {
    if (length < 0 || this.pos + length > this.end) this.fail(`length ${length} runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

export function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] as number) | ((buf[offset + 1] as number) << 8) | ((buf[offset + 2] as number) << 16)) + (buf[offset + 3] as number) * 0x1000000;
}

export function writeU32(buf: Uint8Array, offset: number, value: number): number {
  buf[offset] = value & 0xff;
  buf[offset + 1] = (value >>> 8) & 0xff;
  buf[offset + 2] = (value >>> 16) & 0xff;
  buf[offset + 3] = (value >>> 24) & 0xff;
  return offset + 4;
}

export function writeU64(buf: Uint8Array, offset: number, value: number): number {
  writeU32(buf, offset, value % 0x100000000);
  return writeU32(buf, offset + 4, Math.floor(value / 0x100000000));
}

/** Up to this many bytes are copied by a JS loop: a copy through TypedArray#set or Buffer#copy costs a call into C++. */
const shortCopyBytes = 32;

/** A copy of src[start, end) in one pooled allocation (Buffer.from(view) costs a second object and more checks). */
export function copyOf(src: Uint8Array, start: number, end: number): Buffer {
  const n = end - start;
  const out = Buffer.allocUnsafe(n);
  if (n <= shortCopyBytes) {
    for (let i = 0; i < n; i++) out[i] = src[start + i] as number;
  } else if (start === 0 && end === src.length) {
    out.set(src);
  } else {
    // Uint8Array's subarray, not Buffer's (a JS wrapper that builds a FastBuffer).
    out.set(Uint8Array.prototype.subarray.call(src, start, end));
  }
  return out;
}

/**
 * bytesRange copies up to this many bytes in a JS loop: any native copy of a
 * range needs a view object first (Node 20's Buffer#copy makes one too), a
 * ~90-byte allocation per value flushed.
 */
const rangeLoopCopyBytes = 256;

/** A growable byte buffer for encoders. */
export class ByteWriter {
  buf: Buffer;
  length = 0;

  constructor(initialBytes = 4096) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + extra));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  varint(value: number): void {
    this.ensure(5);
    this.length = writeVarint(this.buf, this.length, value);
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.length = writeU32(this.buf, this.length, value);
  }

  u64(value: number): void {
    this.ensure(8);
    this.length = writeU64(this.buf, this.length, value);
  }

  bytes(data: Uint8Array): void {
    const n = data.length;
    this.ensure(n);
    const buf = this.buf;
    const at = this.length;
    if (n <= shortCopyBytes) {
      for (let i = 0; i < n; i++) buf[at + i] = data[i] as number;
    } else {
      buf.set(data, at);
    }
    this.length = at + n;
  }

  /** Appends `src[start, end)` without a view of it. */
  bytesRange(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    const buf = this.buf;
    const at = this.length;
    if (n <= rangeLoopCopyBytes) {
      for (let i = 0; i < n; i++) buf[at + i] = src[start + i] as number;
    } else {
      buf.set(Uint8Array.prototype.subarray.call(src, start, end), at);
    }
    this.length = at + n;
  }

  /** The written bytes (a view; copy before reusing the writer). */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }
}

/** Keys up to this long are compared in JS: a call into Buffer.compare costs more than the loop. */
const maxInlineCompareBytes = 64;

/**
 * Byte order of `a` and `b[start, end)` (negative: a sorts first), without
 * Buffer.compare's call into C++ for short keys (a point lookup compares
 * several keys, each call ~0.1 µs).
 */
export function compareBytes(a: Uint8Array, b: Uint8Array, start: number, end: number): number {
  const bLen = end - start;
  if (a.length > maxInlineCompareBytes || bLen > maxInlineCompareBytes) return Buffer.compare(a, b.subarray(start, end));
  const n = a.length < bLen ? a.length : bLen;
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[start + i] as number);
    if (d !== 0) return d;
  }
  return a.length - bLen;
}
