/**
 * Key → position on the ring: the Redis Cluster slot, for both strategies,
 * so keys sharing a `{tag}` share a partition and therefore replicas.
 */
import { crc16, mix32 } from '../core/index.ts';
import { redisSlotCount } from './constants.ts';

const openBrace = 0x7b;
const closeBrace = 0x7d;

/**
 * The bytes of `key` that are hashed, as [start, end): Redis Cluster's rule —
 * the text between the first `{` and the first `}` after it, when that text is
 * not empty; otherwise the whole key.
 */
export function hashedRange(key: Uint8Array): [start: number, end: number] {
  const open = key.indexOf(openBrace);
  if (open >= 0) {
    const close = key.indexOf(closeBrace, open + 1);
    if (close > open + 1) return [open + 1, close];
  }
  return [0, key.length];
}

/** The Redis Cluster slot of a key (0 … 16383), identical to CLUSTER KEYSLOT. */
export function keySlot(key: Uint8Array): number {
  const open = key.indexOf(openBrace);
  if (open >= 0) {
    const close = key.indexOf(closeBrace, open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) & (redisSlotCount - 1);
  }
  return crc16(key) & (redisSlotCount - 1);
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
