/**
 * The memtable: a hash map from key to node for writes and point reads, plus
 * a sorted array of nodes built on demand (for scans and the flush).
 *
 * Why not a skiplist: in V8 every skiplist step chases pointers through
 * separately allocated objects (node, its `next` array, the key), and
 * measured inserts ran ~7x slower than a Map insert plus a later sort. Here
 * new nodes go to `pending`; `sortedNodes()` sorts `pending` and merges it
 * into `sorted`, creating a new array, so an array already handed to a scan
 * never changes under it.
 *
 * Each node holds the newest version of its key. While a scan has the
 * memtable pinned, an overwrite keeps the previous version in `older`, so the
 * scan still sees the state as of its sequence number; with no pins,
 * overwrites replace in place and use no extra memory.
 */

/**
 * One version of a key. The value lives in the memtable's arena (`chunk` at
 * `off`, `len` bytes) rather than in a Buffer of its own: a Buffer object per
 * value would cost more heap than a 100-byte value itself.
 */
import { bloomHash } from './bloom.ts';

export interface MemVersion {
  seq: number;
  /** undefined: a deletion (tombstone). */
  chunk: Buffer | undefined;
  off: number;
  len: number;
  meta: Buffer | undefined;
  older: MemVersion | undefined;
}

export function versionValue(v: MemVersion): Buffer | undefined {
  return v.chunk === undefined ? undefined : v.chunk.subarray(v.off, v.off + v.len);
}

export class MemNode implements MemVersion {
  seq: number;
  chunk: Buffer | undefined;
  off: number;
  len: number;
  meta: Buffer | undefined;
  older: MemVersion | undefined = undefined;

  constructor(
    readonly key: string,
    /** The key's bytes in the memtable's arena (see keyBytes). */
    private readonly keyChunk: Buffer,
    private readonly keyOff: number,
    /** Bytes 0–2 and 3–5 of the key (zero padded) as small integers: most comparisons end here. */
    readonly p1: number,
    readonly p2: number,
    seq: number,
    chunk: Buffer | undefined,
    off: number,
    len: number,
    meta: Buffer | undefined,
  ) {
    this.seq = seq;
    this.chunk = chunk;
    this.off = off;
    this.len = len;
    this.meta = meta;
  }

  /**
   * The key as bytes: a view into the arena. (A Buffer made from the string
   * would be a slice of Node's shared 8 KiB pool, and every such slice kept by
   * a node kept its whole pool chunk alive: a full scan pinned ~70 MiB.)
   */
  get keyBytes(): Buffer {
    return this.keyChunk.subarray(this.keyOff, this.keyOff + this.key.length);
  }

  /** The version visible at `seq`, or undefined when the key was written later. */
  visibleAt(seq: number): MemVersion | undefined {
    if (this.seq <= seq) return this;
    let version = this.older;
    while (version !== undefined && version.seq > seq) version = version.older;
    return version;
  }
}

/** Approximate JS heap cost of a node beyond its bytes, so the size budget tracks real memory. */
export const memNodeOverheadBytes = 240;
/**
 * Presence-filter bits per entry the memtable can hold at most (budget /
 * node overhead). Most point reads miss the memtable; the filter answers
 * them from the key's bloom hashes without building the key string and
 * probing the Map. 8 bits per possible entry, 2 probes: well under 1 % false
 * positives at the typical fill.
 */
const presenceBitsPerEntry = 8;
const minPresenceBits = 1024;
/** Values are copied into arena chunks of this size; bigger values get a chunk of their own. */
const arenaChunkBytes = 1024 * 1024;
const ownChunkMinBytes = 64 * 1024;

/** latin1 string of a key: one code unit per byte, so string order is byte order. */
export function keyString(key: Uint8Array): string {
  return Buffer.prototype.latin1Slice.call(key, 0, key.length);
}

export function prefixHigh(key: Uint8Array): number {
  const n = key.length;
  return ((n > 0 ? (key[0] as number) : 0) << 16) | ((n > 1 ? (key[1] as number) : 0) << 8) | (n > 2 ? (key[2] as number) : 0);
}

export function prefixLow(key: Uint8Array): number {
  const n = key.length;
  return ((n > 3 ? (key[3] as number) : 0) << 16) | ((n > 4 ? (key[4] as number) : 0) << 8) | (n > 5 ? (key[5] as number) : 0);
}

/**
 * Byte order of two nodes. The zero-padded prefixes are order-preserving
 * (a < b implies prefix(a) ≤ prefix(b)), so only equal prefixes need the
 * string compare.
 */
export function compareNodes(a: MemNode, b: MemNode): number {
  return a.p1 - b.p1 || a.p2 - b.p2 || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** Index of the first node ≥ key in a sorted node array. */
export function lowerBound(nodes: readonly MemNode[], key: Uint8Array): number {
  const p1 = prefixHigh(key);
  const p2 = prefixLow(key);
  const k = keyString(key);
  let lo = 0;
  let hi = nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const n = nodes[mid] as MemNode;
    if (n.p1 < p1 || (n.p1 === p1 && (n.p2 < p2 || (n.p2 === p2 && n.key < k)))) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function merge(a: readonly MemNode[], b: readonly MemNode[]): MemNode[] {
  const out = new Array<MemNode>(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length && j < b.length) {
    out[o++] = compareNodes(a[i] as MemNode, b[j] as MemNode) <= 0 ? (a[i++] as MemNode) : (b[j++] as MemNode);
  }
  while (i < a.length) out[o++] = a[i++] as MemNode;
  while (j < b.length) out[o++] = b[j++] as MemNode;
  return out;
}

export class Memtable {
  private readonly map = new Map<string, MemNode>();
  private sorted: MemNode[] = [];
  private pending: MemNode[] = [];
  /** Approximate memory in bytes (keys, values, metadata and node overhead). */
  bytes = 0;
  /** Scans reading this memtable; while > 0 overwrites keep old versions. */
  pins = 0;
  /** Highest sequence number applied. */
  lastSeq = 0;

  /** Bit array over the keys' bloom hashes (a Bloom filter with 2 probes); a power of two in bits. */
  private readonly presence: Uint32Array;
  private readonly presenceMask: number;
  private readonly hash = new Uint32Array(2);

  /** `budgetBytes`: the memtable size it will be flushed at, which sizes the presence filter. */
  constructor(
    readonly walNumber: number,
    budgetBytes = 0,
  ) {
    let bits = minPresenceBits;
    const wanted = Math.ceil(budgetBytes / memNodeOverheadBytes) * presenceBitsPerEntry;
    while (bits < wanted) bits *= 2;
    this.presence = new Uint32Array(bits / 32);
    this.presenceMask = bits - 1;
    this.bytes = this.presence.byteLength;
  }

  /** False when no key with these bloom hashes (bloom.ts bloomHash) was ever set. */
  mayContain(h1: number, h2: number): boolean {
    const a = h1 & this.presenceMask;
    const b = h2 & this.presenceMask;
    const p = this.presence;
    return ((p[a >>> 5] as number) & (1 << (a & 31))) !== 0 && ((p[b >>> 5] as number) & (1 << (b & 31))) !== 0;
  }

  private markPresent(keyBytes: Uint8Array): void {
    bloomHash(keyBytes, this.hash);
    const a = (this.hash[0] as number) & this.presenceMask;
    const b = (this.hash[1] as number) & this.presenceMask;
    const p = this.presence;
    p[a >>> 5] = (p[a >>> 5] as number) | (1 << (a & 31));
    p[b >>> 5] = (p[b >>> 5] as number) | (1 << (b & 31));
  }

  get entries(): number {
    return this.map.size;
  }

  get(key: string): MemNode | undefined {
    return this.map.get(key);
  }

  private chunk: Buffer = Buffer.alloc(0);
  private chunkUsed = 0;

  /** The chunk the last copyIn wrote to (a field, not a returned pair: no array per write). */
  private copiedChunk: Buffer = this.chunk;

  /** Copies a value into the arena; returns its offset in `copiedChunk`. */
  private copyIn(value: Uint8Array): number {
    const len = value.length;
    if (len >= ownChunkMinBytes) {
      this.copiedChunk = Buffer.from(value);
      return 0;
    }
    if (this.chunkUsed + len > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(arenaChunkBytes);
      this.chunkUsed = 0;
    }
    const at = this.chunkUsed;
    this.chunk.set(value, at);
    this.chunkUsed += len;
    this.copiedChunk = this.chunk;
    return at;
  }

  /** value undefined: a deletion. Key, value and metadata are copied into the arena. */
  set(key: string, keyBytes: Uint8Array, seq: number, value: Uint8Array | undefined, metaIn: Uint8Array | undefined): void {
    this.lastSeq = seq;
    let chunk: Buffer | undefined;
    let off = 0;
    const len = value?.length ?? 0;
    if (value !== undefined) {
      off = this.copyIn(value);
      chunk = this.copiedChunk;
    }
    let meta: Buffer | undefined;
    if (metaIn !== undefined) {
      const metaOff = this.copyIn(metaIn);
      meta = this.copiedChunk.subarray(metaOff, metaOff + metaIn.length);
    }
    // Arena space of an overwritten value is not reclaimed: it counts until the flush.
    this.bytes += len + (meta?.length ?? 0);
    const found = this.map.get(key);
    if (found !== undefined) {
      if (this.pins > 0) {
        found.older = { seq: found.seq, chunk: found.chunk, off: found.off, len: found.len, meta: found.meta, older: found.older };
        this.bytes += 64;
      }
      found.seq = seq;
      found.chunk = chunk;
      found.off = off;
      found.len = len;
      found.meta = meta;
      return;
    }
    const keyOff = this.copyIn(keyBytes);
    const node = new MemNode(key, this.copiedChunk, keyOff, prefixHigh(keyBytes), prefixLow(keyBytes), seq, chunk, off, len, meta);
    this.map.set(key, node);
    this.markPresent(keyBytes);
    this.pending.push(node);
    // The key is held twice: as the Map's string and as bytes in the arena.
    this.bytes += 2 * key.length + memNodeOverheadBytes;
  }

  /** Every node in key order. The array returned is never modified afterwards (scans keep it). */
  sortedNodes(): MemNode[] {
    if (this.pending.length > 0) {
      const pending = this.pending.sort(compareNodes);
      this.sorted = this.sorted.length === 0 ? pending : merge(this.sorted, pending);
      this.pending = [];
    }
    return this.sorted;
  }
}
