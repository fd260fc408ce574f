/**
 * The write-ahead log (byte-level format in docs/formats/wal.md).
 *
 *   file   := header record*
 *   header := magic u32 "RKVW" | version u8 | 3 reserved bytes
 *   record := length u32 | crc32 u32 (over type and payload) | type u8 | payload
 *
 * One record holds one write batch, so a batch is applied on recovery
 * entirely or not at all.
 */
import { CorruptionError, crc32Range } from '../core/index.ts';
import type { BatchOp } from './engine.ts';
import { kindDelete, kindPut, kindPutMeta } from './block.ts';
import { ByteWriter, Reader, readU32, writeU32 } from './codec.ts';

/** docs/formats/wal.md: "RKVW" little-endian. */
export const walMagic = 0x57564b52;
export const walFormatVersion = 1;
export const walHeaderBytes = 8;
export const walRecordHeaderBytes = 9;
export const walRecordBatch = 1;
/** Types with this bit set may be skipped by readers that do not know them (docs/formats/wal.md). */
export const walSkippableTypeBit = 0x80;
/** A record larger than this cannot be valid (bounds the scan past a bad record). */
export const maxWalRecordBytes = 1024 * 1024 * 1024;
/** How far past a bad record recovery looks for a valid one to tell mid-file corruption from a torn tail. */
const corruptionScanWindowBytes = 1024 * 1024;

export function walFileName(number: number): string {
  return `${String(number).padStart(6, '0')}.log`;
}

export function walHeader(): Uint8Array {
  const header = new Uint8Array(walHeaderBytes);
  writeU32(header, 0, walMagic);
  header[4] = walFormatVersion;
  return header;
}

/** Appends one batch record to `w`; returns the user bytes it carries. */
export function encodeBatchRecord(w: ByteWriter, batch: readonly BatchOp[]): void {
  const start = w.length;
  w.ensure(walRecordHeaderBytes);
  w.length += walRecordHeaderBytes;
  w.varint(batch.length);
  for (const op of batch) {
    if (op.type === 'put') encodePutOp(w, op.key, op.value, op.meta);
    else {
      w.u8(kindDelete);
      w.varint(op.key.length);
      w.bytes(op.key);
    }
  }
  finishRecord(w, start);
}

/** The record of a batch holding one put, without building the batch (same bytes as encodeBatchRecord). */
export function encodePutRecord(w: ByteWriter, key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined): void {
  const start = w.length;
  w.ensure(walRecordHeaderBytes);
  w.length += walRecordHeaderBytes;
  w.varint(1);
  encodePutOp(w, key, value, meta);
  finishRecord(w, start);
}

function encodePutOp(w: ByteWriter, key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined): void {
  w.u8(meta === undefined ? kindPut : kindPutMeta);
  w.varint(key.length);
  w.bytes(key);
  if (meta !== undefined) {
    w.varint(meta.length);
    w.bytes(meta);
  }
  w.varint(value.length);
  w.bytes(value);
}

function finishRecord(w: ByteWriter, start: number): void {
  const payloadLength = w.length - start - walRecordHeaderBytes;
  const buf = w.buf;
  writeU32(buf, start, payloadLength);
  buf[start + 8] = walRecordBatch;
  writeU32(buf, start + 4, crc32Range(buf, start + 8, w.length));
}

export interface WalReplayResult {
  batches: BatchOp[][];
  /** Length of the valid prefix; bytes after it are a torn tail to truncate, or a preallocated tail of zeros. */
  validBytes: number;
  tornTail: boolean;
}

/** Compared against a tail at a time to find whether it is all zeros (a preallocated file's unused part). */
const zeroRun = new Uint8Array(64 * 1024);

/** True when every byte of data from `from` on is zero. */
function zerosFrom(data: Uint8Array, from: number): boolean {
  for (let at = from; at < data.length; at += zeroRun.length) {
    const n = Math.min(zeroRun.length, data.length - at);
    if (Buffer.compare(Buffer.from(data.buffer, data.byteOffset + at, n), n === zeroRun.length ? zeroRun : zeroRun.subarray(0, n)) !== 0) return false;
  }
  return true;
}

function recordValidAt(data: Uint8Array, at: number): boolean {
  if (at + walRecordHeaderBytes > data.length) return false;
  const length = readU32(data, at);
  const end = at + walRecordHeaderBytes + length;
  if (length > maxWalRecordBytes || end > data.length) return false;
  return crc32Range(data, at + 8, end) === readU32(data, at + 4);
}

/** True when some complete, checksum-valid record starts after `from`. */
function validRecordAfter(data: Uint8Array, from: number): boolean {
  const limit = Math.min(data.length - walRecordHeaderBytes, from + corruptionScanWindowBytes);
  for (let at = from + 1; at <= limit; at++) {
    if (recordValidAt(data, at)) return true;
  }
  return false;
}

function decodeBatch(data: Uint8Array, start: number, end: number, file: string): BatchOp[] {
  const r = new Reader(data, start, end, file, 0);
  const count = r.varint();
  const ops: BatchOp[] = [];
  for (let i = 0; i < count; i++) {
    const kind = r.u8();
    const key = Buffer.from(r.bytes(r.varint()));
    if (kind === kindDelete) {
      ops.push({ type: 'delete', key });
    } else if (kind === kindPut || kind === kindPutMeta) {
      const meta = kind === kindPutMeta ? Buffer.from(r.bytes(r.varint())) : undefined;
      const value = Buffer.from(r.bytes(r.varint()));
      ops.push(meta === undefined ? { type: 'put', key, value } : { type: 'put', key, value, meta });
    } else {
      r.fail(`unknown operation kind ${kind}`);
    }
  }
  if (r.pos !== end) r.fail(`${end - r.pos} unexpected bytes after the batch`);
  return ops;
}

/**
 * Decodes a whole log. The log ends where only zero bytes follow (a
 * preallocated file) or at the end of the file. A record that fails its
 * checksum or runs past the end is a torn tail when no valid record follows
 * it (the write was cut by a crash); when a valid record does follow, the
 * damage is in the middle of the log and recovery stops with a
 * CorruptionError naming file and offset.
 */
export function replayWal(data: Uint8Array, file: string): WalReplayResult {
  if (data.length < walHeaderBytes) return { batches: [], validBytes: 0, tornTail: data.length > 0 };
  const magic = readU32(data, 0);
  // A crash during the log's creation: its header never reached the disk, so no record was
  // acknowledged in it (the header is synced first). Preallocated, the file is zeros.
  if (magic !== walMagic && zerosFrom(data, walHeaderBytes)) return { batches: [], validBytes: 0, tornTail: !zerosFrom(data, 0) };
  if (magic !== walMagic) {
    throw new CorruptionError(`Corrupt WAL ${file} at offset 0: bad magic (not a ringkv log)`, { file, offset: 0 });
  }
  const version = data[4] as number;
  if (version !== walFormatVersion) {
    throw new CorruptionError(`Cannot read WAL ${file}: format version ${version} is not supported (this build reads ${walFormatVersion})`, { file, offset: 4 });
  }
  const batches: BatchOp[][] = [];
  let at = walHeaderBytes;
  while (at < data.length) {
    if (!recordValidAt(data, at)) {
      // A preallocated log (LsmOptions.walPreallocate) ends in zeros: its end, not damage.
      if (zerosFrom(data, at)) return { batches, validBytes: at, tornTail: false };
      if (validRecordAfter(data, at)) {
        const reason = at + walRecordHeaderBytes > data.length ? 'truncated record header' : 'record checksum mismatch or bad length';
        throw new CorruptionError(`Corrupt WAL ${file} at offset ${at}: ${reason}, and valid records follow (not a torn tail)`, { file, offset: at });
      }
      return { batches, validBytes: at, tornTail: true };
    }
    const length = readU32(data, at);
    const type = data[at + 8] as number;
    const payloadStart = at + walRecordHeaderBytes;
    if (type === walRecordBatch) {
      batches.push(decodeBatch(data, payloadStart, payloadStart + length, file));
    } else if ((type & walSkippableTypeBit) === 0) {
      throw new CorruptionError(`Cannot read WAL ${file} at offset ${at}: record type ${type} is unknown and not skippable (written by a newer ringkv?)`, { file, offset: at });
    }
    at = payloadStart + length;
  }
  return { batches, validBytes: at, tornTail: false };
}
