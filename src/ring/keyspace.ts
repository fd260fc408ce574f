/**
 * Key → position on the ring: the Redis Cluster slot, for both strategies,
 * so keys sharing a `{tag}` share a partition and therefore replicas.
 */
import { crc16, mix32 } from '../core/index.ts';
import { redisSlotCount } from './constants.ts';

const openBrace = 0x7b;
const closeBrace = 0x7d;
/** Keys up to this length are searched by a loop: Buffer#indexOf's call into C++ costs more for them (~3 % of a GET). */
const shortKeyBytes = 64;

/** The first `byte` in `key` at or after `from`, or -1. */
function indexOfByte(key: Uint8Array, byte: number, from: number): number {
  const n = key.length;
  if (n > shortKeyBytes) return key.indexOf(byte, from);
  for (let i = from; i < n; i++) if (key[i] === byte) return i;
  return -1;
}

/** End of the hash tag whose `{` is at `open` (the text between is hashed), or -1 when there is none. */
function tagEnd(key: Uint8Array, open: number): number {
  if (open < 0) return -1;
  const close = indexOfByte(key, closeBrace, open + 1);
  return close > open + 1 ? close : -1;
}

/**
 * The bytes of `key` that are hashed, as [start, end): Redis Cluster's rule —
 * the text between the first `{` and the first `}` after it, when that text is
 * not empty; otherwise the whole key.
 */
export function hashedRange(key: Uint8Array): [start: number, end: number] {
  const open = indexOfByte(key, openBrace, 0);
  const close = tagEnd(key, open);
  return close < 0 ? [0, key.length] : [open + 1, close];
}

/** The Redis Cluster slot of a key (0 … 16383), identical to CLUSTER KEYSLOT. Allocates nothing. */
export function keySlot(key: Uint8Array): number {
  const open = indexOfByte(key, openBrace, 0);
  const close = tagEnd(key, open);
  return (close < 0 ? crc16(key) : crc16(key, open + 1, close)) & (redisSlotCount - 1);
}

/** FNV-1a over bytes [start, end), then mixed: the random strategy's token positions. */
export function hash32(data: Uint8Array, start = 0, end = data.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= data[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}
