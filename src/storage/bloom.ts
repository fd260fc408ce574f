/**
 * Bloom filters for SSTables (docs/formats/sstable.md, "filter block").
 * Kirsch–Mitzenmacher double hashing: probe i is h1 + i·h2 (mod m bits), with
 * two independent 32-bit hashes of the key, so the false-positive rate tracks
 * the theory (1 − e^(−k·n/m))^k; test/storage/bloom.test.ts measures it.
 */

import { mix32 } from '../core/index.ts';

/** The two hashes of a key, written into `out` (no allocation per lookup). */
export function bloomHash(key: Uint8Array, out: Uint32Array): void {
  bloomHashRange(key, 0, key.length, out);
}

/** bloomHash of `buf[start, end)`. */
export function bloomHashRange(buf: Uint8Array, start: number, end: number, out: Uint32Array): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c ^ (end - start);
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte, 0x5bd1e995);
    b ^= b >>> 15;
  }
  out[0] = mix32(a);
  // An odd step visits distinct bits when m is a power of two and spreads well otherwise.
  out[1] = mix32(b) | 1;
}

export function bloomProbes(bitsPerKey: number): number {
  return Math.max(1, Math.min(30, Math.round(bitsPerKey * Math.LN2)));
}

/** Filter bytes: the bit array followed by one byte holding k (the probe count). */
export function buildBloom(h1s: Uint32Array, h2s: Uint32Array, count: number, bitsPerKey: number): Uint8Array {
  const bits = Math.max(64, Math.ceil(count * bitsPerKey));
  const bytes = Math.ceil(bits / 8);
  const m = bytes * 8;
  const k = bloomProbes(bitsPerKey);
  const filter = new Uint8Array(bytes + 1);
  for (let i = 0; i < count; i++) {
    let h = h1s[i] as number;
    const step = h2s[i] as number;
    for (let j = 0; j < k; j++) {
      const bit = h % m;
      filter[bit >>> 3] = (filter[bit >>> 3] as number) | (1 << (bit & 7));
      h = (h + step) >>> 0;
    }
  }
  filter[bytes] = k;
  return filter;
}

/**
 * Bits per block of the blocked filter (SSTable format 3): one 64-byte cache
 * line. Every probe of a key falls in the one block its h1 picks, so a lookup
 * of a key the table holds reads one cache line of the filter instead of k
 * lines spread over it (Putze, Sanders, Singler, "Cache-, Hash- and
 * Space-Efficient Bloom Filters", 2007).
 */
export const bloomBlockBits = 512;
const bloomBlockBytes = bloomBlockBits / 8;

/** The block `h1` picks among `blocks`: the high bits of h1, scaled (no division). */
function blockOf(h1: number, blocks: number): number {
  return Math.floor(((h1 >>> 0) * blocks) / 4294967296);
}

/**
 * A blocked Bloom filter: `blocks × 64` bytes then k. Within the key's block,
 * probe i sets bit `(s + i·d) mod 512` with s = bits 16..24 of h2 and the odd
 * step d = the low 9 bits of h1 | 1 (the block came from h1's high bits).
 */
export function buildBlockedBloom(h1s: Uint32Array, h2s: Uint32Array, count: number, bitsPerKey: number): Uint8Array {
  const filter = newBlockedBloom(count, bitsPerKey);
  addToBlockedBloom(filter, h1s, h2s, 0, count);
  return filter;
}

/** An empty blocked filter sized for `count` keys (its last byte holds k). */
export function newBlockedBloom(count: number, bitsPerKey: number): Uint8Array {
  const blocks = Math.max(1, Math.ceil((count * bitsPerKey) / bloomBlockBits));
  const filter = new Uint8Array(blocks * bloomBlockBytes + 1);
  filter[blocks * bloomBlockBytes] = bloomProbes(bitsPerKey);
  return filter;
}

/**
 * Adds keys `from..to` of the hash arrays to a filter from newBlockedBloom,
 * so a big table's filter can be built in steps (a flush of a full memtable's
 * ~150k keys took one step of several ms, tens on a loaded machine).
 */
export function addToBlockedBloom(filter: Uint8Array, h1s: Uint32Array, h2s: Uint32Array, from: number, to: number): void {
  const blocks = Math.floor((filter.length - 1) / bloomBlockBytes);
  const k = filter[filter.length - 1] as number;
  for (let i = from; i < to; i++) {
    const h1 = h1s[i] as number;
    const base = blockOf(h1, blocks) * bloomBlockBytes;
    const step = (h1 & 0x1ff) | 1;
    let bit = ((h2s[i] as number) >>> 16) & 0x1ff;
    for (let j = 0; j < k; j++) {
      filter[base + (bit >>> 3)] = (filter[base + (bit >>> 3)] as number) | (1 << (bit & 7));
      bit = (bit + step) & 0x1ff;
    }
  }
}

/** A filter block: the classic layout (SSTable format ≤ 2) or the blocked one (format 3). */
export class BloomFilter {
  private readonly m: number;
  private readonly k: number;
  private readonly blocks: number;

  constructor(
    private readonly filter: Uint8Array,
    readonly blocked = false,
  ) {
    this.m = (filter.length - 1) * 8;
    this.k = filter[filter.length - 1] ?? 0;
    this.blocks = blocked ? Math.floor((filter.length - 1) / bloomBlockBytes) : 0;
  }

  get byteLength(): number {
    return this.filter.length;
  }

  mayContain(h1: number, h2: number): boolean {
    if (this.blocked) return this.blockedMayContain(h1, h2);
    const m = this.m;
    if (m === 0) return true;
    const filter = this.filter;
    let h = h1;
    for (let j = 0; j < this.k; j++) {
      const bit = h % m;
      if (((filter[bit >>> 3] as number) & (1 << (bit & 7))) === 0) return false;
      h = (h + h2) >>> 0;
    }
    return true;
  }

  private blockedMayContain(h1: number, h2: number): boolean {
    const blocks = this.blocks;
    if (blocks === 0) return true;
    const filter = this.filter;
    const base = blockOf(h1, blocks) * bloomBlockBytes;
    const step = (h1 & 0x1ff) | 1;
    let bit = (h2 >>> 16) & 0x1ff;
    for (let j = 0; j < this.k; j++) {
      if (((filter[base + (bit >>> 3)] as number) & (1 << (bit & 7))) === 0) return false;
      bit = (bit + step) & 0x1ff;
    }
    return true;
  }
}

/** The false-positive rate a filter with these parameters should have. */
export function theoreticalFalsePositiveRate(bitsPerKey: number): number {
  const k = bloomProbes(bitsPerKey);
  return (1 - Math.exp(-k / bitsPerKey)) ** k;
}
