/** Checksums and hashes shared by storage, ring and transport. */
import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE), as in zlib and gzip. Used for record and block checksums. */
export function crc32(data: Uint8Array, initial = 0): number {
  return zlibCrc32(data, initial) >>> 0;
}

// CRC-16/XMODEM (polynomial 0x1021), the variant Redis Cluster uses for slots.
const crc16Table = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

export function crc16(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (crc16Table[((crc >>> 8) ^ (data[i] as number)) & 0xff] as number);
  }
  return crc;
}

/** FNV-1a 32-bit: cheap, well mixed enough for token placement and test data. */
export function fnv1a32(data: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    hash ^= data[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Murmur3's 32-bit finalizer: spreads a weak hash's bits over the whole word. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
