/**
 * Storage key layout (docs/formats/object.md, "Storage keys"): the engine
 * orders data by (partition, user key), so one partition is one contiguous
 * key range — streaming it to a new owner or hashing it into a Merkle tree is
 * a sequential scan.
 *
 *   storage key = keyspace byte (0x01: user data) · partition (u16 big-endian) · user key
 *
 * The partition is the Redis Cluster slot: CRC16 of the key, or of its
 * `{hash tag}` when it has one, mod 16384. The keyspace byte leaves room for
 * other namespaces in the same engine.
 */
import { InvalidArgumentError, describeKey } from '../core/index.ts';
import { keySlot } from '../ring/index.ts';
import type { KeyRange } from '../storage/index.ts';

/** First byte of every user-data storage key. */
export const dataKeyspace = 0x01;
/** Partitions of the key layout: one per Redis Cluster slot. */
export const slotCount = 16384;
/** Bytes before the user key: keyspace byte and partition. */
export const storageKeyPrefixBytes = 3;
/**
 * Largest user key accepted: the storage engine's 64 KiB key limit less the
 * 3-byte prefix (Redis allows more; clients rarely come near it).
 */
export const maxKeyBytes = 65_536 - storageKeyPrefixBytes;
/** Largest value accepted in one version. */
export const maxValueBytes = 4 * 1024 * 1024;

/** The Redis Cluster slot of a key, identical to CLUSTER KEYSLOT (hash tags honoured). */
export const slotOf: (key: Uint8Array) => number = keySlot;

export function storageKey(userKey: Uint8Array, partition: number = slotOf(userKey)): Uint8Array {
  const out = Buffer.allocUnsafe(storageKeyPrefixBytes + userKey.length);
  out[0] = dataKeyspace;
  out.writeUInt16BE(partition, 1);
  out.set(userKey, storageKeyPrefixBytes);
  return out;
}

/** Storage keys up to this length are built in place by StorageKeyScratch. */
const maxScratchKeyBytes = 512;

/**
 * Storage keys for synchronous lookups, built into one reused buffer: a
 * view per key length, made once, so a GET of a key as long as the last one
 * allocates nothing. A key it hands out is valid until the next call, so it
 * is only for a lookup whose callee keeps nothing of the key (an engine's
 * getNow copies what it returns); never for a write.
 */
export class StorageKeyScratch {
  private readonly buf = Buffer.allocUnsafeSlow(maxScratchKeyBytes);
  private readonly views: Array<Buffer | undefined> = [];

  of(userKey: Uint8Array, partition: number = slotOf(userKey)): Uint8Array {
    const length = storageKeyPrefixBytes + userKey.length;
    if (length > maxScratchKeyBytes) return storageKey(userKey, partition);
    let view = this.views[length];
    if (view === undefined) {
      view = this.buf.subarray(0, length);
      this.views[length] = view;
    }
    view[0] = dataKeyspace;
    view[1] = partition >>> 8;
    view[2] = partition & 0xff;
    // Keys are short: a loop beats set()'s call overhead.
    if (userKey.length <= 64) for (let i = 0; i < userKey.length; i++) view[storageKeyPrefixBytes + i] = userKey[i] as number;
    else view.set(userKey, storageKeyPrefixBytes);
    return view;
  }
}

/** True when `key` is a user-data storage key (other namespaces are skipped by scans). */
export function isDataKey(key: Uint8Array): boolean {
  return key.length >= storageKeyPrefixBytes && key[0] === dataKeyspace;
}

export function userKeyOf(key: Uint8Array): Uint8Array {
  return key.subarray(storageKeyPrefixBytes);
}

export function partitionOfStorageKey(key: Uint8Array): number {
  return (((key[1] as number) << 8) | (key[2] as number)) >>> 0;
}

function prefix(partition: number): Uint8Array {
  return Uint8Array.of(dataKeyspace, partition >>> 8, partition & 0xff);
}

/** The engine range holding partitions [from, to) (to = slotCount: through the last one). */
export function partitionRange(from: number, to: number = from + 1): KeyRange {
  return to >= slotCount ? { gte: prefix(from), lt: Uint8Array.of(dataKeyspace + 1) } : { gte: prefix(from), lt: prefix(to) };
}

/** The engine range of all user data. */
export function dataRange(): KeyRange {
  return partitionRange(0, slotCount);
}

export function validateKey(key: Uint8Array): void {
  if (key.length > maxKeyBytes) throw new InvalidArgumentError(`Cannot use key ${describeKey(key)} as it is ${key.length} bytes: the limit is ${maxKeyBytes}`);
}

export function validateValue(key: Uint8Array, value: Uint8Array): void {
  if (value.length > maxValueBytes) {
    throw new InvalidArgumentError(`Cannot write key ${describeKey(key)} as its value is ${value.length} bytes: the limit is ${maxValueBytes}`);
  }
}
