/**
 * The memtable: every entry lives in typed arrays and arena chunks, none in
 * a JS object of its own. An open-addressing hash table over the keys' bloom
 * hashes serves writes and point reads; an array of entry ids in key order is
 * built on demand (for scans and the flush).
 *
 * Why no object per entry: the previous memtable (a Map from latin1 key
 * string to a node object) cost ~240 bytes of JS heap per entry, and all of
 * it survived the young generation until the flush. V8 grows its young
 * generation to the 16 MiB semi-space maximum under such survival (32 MiB of
 * RSS) and each flushed memtable left ~11 MiB of old-space garbage. Here an
 * entry costs ~56 bytes of typed arrays, nothing survives a scavenge, and a
 * 16 MiB memtable holds about twice as many entries (fewer flushes and L0
 * files).
 *
 * Why not a skiplist: in V8 every skiplist step chases pointers through
 * separately allocated objects; inserts measured ~7x slower than a hash
 * insert plus a later sort. New ids are appended in insertion order;
 * `sortedIds()` sorts the ones added since the last call and merges them into
 * a new array, so an array already handed to a scan never changes under it.
 *
 * Each entry holds the newest version of its key. While a scan has the
 * memtable pinned, an overwrite keeps the previous version in `older` (rare:
 * small objects), so the scan still sees the state as of its sequence
 * number; with no pins, overwrites replace in place and use no extra memory.
 */

/** An older version of an entry, kept only while a scan pins the memtable. */
export interface MemVersion {
  seq: number;
  /** undefined: a deletion (tombstone). */
  value: Buffer | undefined;
  meta: Buffer | undefined;
  older: MemVersion | undefined;
}

/** Typed-array bytes per entry: 9 Int32 fields and one Float64 (see the arrays below). */
const entryArrayBytes = 9 * 4 + 8;
/** Hash slots per entry at most (load ≤ 1/2), 4 bytes each. */
const hashSlotsPerEntry = 2;
/** Charged per older version kept for a pinned scan (object and buffers' headers). */
const olderVersionBytes = 160;
/** Entry arrays start at this capacity for budgets of at least 1024 × `initialBudgetBytesPerEntry`, smaller below, and double as needed. */
const maxInitialEntries = 1024;
const minInitialEntries = 8;
const initialBudgetBytesPerEntry = 1024;
/**
 * Presence-filter bits per entry the memtable can hold at most (budget /
 * smallest entry cost). Most point reads miss the memtable; the filter
 * answers them from the key's bloom hashes without probing the hash table.
 * 8 bits per possible entry, 2 probes: well under 1 % false positives at the
 * typical fill.
 */
const presenceBitsPerEntry = 8;
const minEntryBytesForPresence = 128;
const minPresenceBits = 1024;
/** Keys and values are copied into arena chunks of this size; bigger values get a chunk of their own. */
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

function grownInt32(a: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(length);
  b.set(a);
  return b;
}

export class Memtable {
  /** Approximate memory in bytes (arena, typed arrays, presence filter, older versions). */
  bytes = 0;
  /** Scans reading this memtable; while > 0 overwrites keep old versions. */
  pins = 0;
  /** Highest sequence number applied. */
  lastSeq = 0;
  private count = 0;
  private capacity: number;

  // Entry id → fields. Key: chunk, offset, length. Value and metadata are
  // stored back to back at (valueChunk, valueOff): valueLen -1 is a deletion,
  // metaLen -1 no metadata.
  private keyChunk: Int32Array<ArrayBuffer>;
  private keyOff: Int32Array<ArrayBuffer>;
  private keyLen: Int32Array<ArrayBuffer>;
  private valueChunk: Int32Array<ArrayBuffer>;
  private valueOff: Int32Array<ArrayBuffer>;
  private valueLen: Int32Array<ArrayBuffer>;
  private metaLen: Int32Array<ArrayBuffer>;
  private seqs: Float64Array<ArrayBuffer>;
  /** The key's first bloom hash: the hash table's home slot, and a cheap inequality test before comparing bytes. */
  private hashes: Int32Array<ArrayBuffer>;
  /** Open addressing, linear probing: id + 1, 0 = empty. A power of two in length. */
  private table: Int32Array<ArrayBuffer>;
  private older: Map<number, MemVersion> | undefined = undefined;

  private chunks: Buffer[] = [];
  /** Arena chunks of a recycled memtable, used before allocating new ones. */
  private freeChunks: Buffer[] = [];
  private chunk: Buffer = Buffer.alloc(0);
  private chunkIndex = -1;
  private chunkUsed = 0;
  /** Where the last copyIn wrote (fields, not a returned pair: no array per write). */
  private copiedChunk = 0;

  /** Ids in key order, for ids below `sortedCount`; never modified once built (scans keep it). */
  private sorted: Int32Array = new Int32Array(0);
  private sortedCount = 0;

  /** Bit array over the keys' bloom hashes (a Bloom filter with 2 probes); a power of two in bits. */
  private presence: Uint32Array;
  private readonly presenceMask: number;

  /**
   * `budgetBytes`: the memtable size it will be flushed at, which sizes the
   * presence filter. `recycled`: a flushed memtable nothing reads any more,
   * whose arena chunks and arrays this one takes over (see recycle()).
   */
  constructor(
    readonly walNumber: number,
    budgetBytes = 0,
    recycled?: Memtable,
  ) {
    let bits = minPresenceBits;
    const wanted = Math.ceil(budgetBytes / minEntryBytesForPresence) * presenceBitsPerEntry;
    while (bits < wanted) bits *= 2;
    this.presence = new Uint32Array(bits / 32);
    this.presenceMask = bits - 1;
    // A small budget must not be used up by empty arrays (the memtable would count as full before its first write).
    let capacity = minInitialEntries;
    while (capacity < maxInitialEntries && capacity * 2 * initialBudgetBytesPerEntry <= budgetBytes) capacity *= 2;
    this.capacity = capacity;
    this.keyChunk = new Int32Array(capacity);
    this.keyOff = new Int32Array(capacity);
    this.keyLen = new Int32Array(capacity);
    this.valueChunk = new Int32Array(capacity);
    this.valueOff = new Int32Array(capacity);
    this.valueLen = new Int32Array(capacity);
    this.metaLen = new Int32Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.hashes = new Int32Array(capacity);
    this.table = new Int32Array(capacity * hashSlotsPerEntry);
    if (recycled !== undefined) this.takeOver(recycled);
    this.bytes = this.presence.byteLength + this.arrayBytes();
  }

  /**
   * Why recycle: these arrays and chunks are off the JS heap, and V8 frees
   * them only when a garbage collection runs; with no JS garbage to prompt
   * one, each flushed memtable's ~16 MiB lingered (fill phases peaked ~50 MiB
   * above the two memtables). Taking them over keeps the total at two
   * memtables' worth. The arrays are taken only when the flushed memtable
   * used at least half of them (a memtable of big values needs few entries).
   */
  private takeOver(old: Memtable): void {
    for (const chunk of old.chunks) if (chunk.length === arenaChunkBytes) this.freeChunks.push(chunk);
    for (const chunk of old.freeChunks) this.freeChunks.push(chunk);
    old.chunks = [];
    old.freeChunks = [];
    if (old.presence.length === this.presence.length) {
      this.presence = old.presence;
      this.presence.fill(0);
    }
    if (old.capacity > this.capacity && 2 * old.count >= old.capacity) {
      this.capacity = old.capacity;
      this.keyChunk = old.keyChunk;
      this.keyOff = old.keyOff;
      this.keyLen = old.keyLen;
      this.valueChunk = old.valueChunk;
      this.valueOff = old.valueOff;
      this.valueLen = old.valueLen;
      this.metaLen = old.metaLen;
      this.seqs = old.seqs;
      this.hashes = old.hashes;
      this.table = old.table;
      this.table.fill(0);
    }
    // The old memtable now reads as empty, so a stray reference can never see another memtable's entries.
    old.count = 0;
    old.sortedCount = 0;
    old.sorted = new Int32Array(0);
    old.table = new Int32Array(2);
    this.bytes = this.presence.byteLength + this.arrayBytes();
  }

  private arrayBytes(): number {
    return this.capacity * entryArrayBytes + this.table.byteLength + 4 * this.sorted.length;
  }

  /** False when no key with these bloom hashes (bloom.ts bloomHash) was ever set. */
  mayContain(h1: number, h2: number): boolean {
    const a = h1 & this.presenceMask;
    const b = h2 & this.presenceMask;
    const p = this.presence;
    return ((p[a >>> 5] as number) & (1 << (a & 31))) !== 0 && ((p[b >>> 5] as number) & (1 << (b & 31))) !== 0;
  }

  get entries(): number {
    return this.count;
  }

  /** Id of the entry for `key` (h1: its first bloom hash), or -1. */
  find(key: Uint8Array, h1: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const hash = h1 | 0;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = (table[slot] as number) - 1;
      if (id < 0) return -1;
      if (this.hashes[id] === hash && this.keyEquals(id, key)) return id;
    }
  }

  private keyEquals(id: number, key: Uint8Array): boolean {
    const len = this.keyLen[id] as number;
    if (len !== key.length) return false;
    const chunk = this.chunks[this.keyChunk[id] as number] as Buffer;
    const off = this.keyOff[id] as number;
    for (let i = 0; i < len; i++) if (chunk[off + i] !== key[i]) return false;
    return true;
  }

  isDeletion(id: number): boolean {
    return (this.valueLen[id] as number) < 0;
  }

  /** The entry's key, a view into the arena. */
  key(id: number): Buffer {
    const off = this.keyOff[id] as number;
    return (this.chunks[this.keyChunk[id] as number] as Buffer).subarray(off, off + (this.keyLen[id] as number));
  }

  /** The entry's value, a view into the arena (undefined: a deletion). */
  value(id: number): Buffer | undefined {
    const len = this.valueLen[id] as number;
    if (len < 0) return undefined;
    const off = this.valueOff[id] as number;
    return (this.chunks[this.valueChunk[id] as number] as Buffer).subarray(off, off + len);
  }

  valueLength(id: number): number {
    return this.valueLen[id] as number;
  }

  /** Copies the entry's value into `target` at 0 (the caller sized it by valueLength). */
  copyValue(id: number, target: Buffer): void {
    const off = this.valueOff[id] as number;
    (this.chunks[this.valueChunk[id] as number] as Buffer).copy(target, 0, off, off + (this.valueLen[id] as number));
  }

  /** The entry's metadata, a view into the arena. */
  meta(id: number): Buffer | undefined {
    const len = this.metaLen[id] as number;
    if (len < 0) return undefined;
    const off = (this.valueOff[id] as number) + Math.max(0, this.valueLen[id] as number);
    return (this.chunks[this.valueChunk[id] as number] as Buffer).subarray(off, off + len);
  }

  seqOf(id: number): number {
    return this.seqs[id] as number;
  }

  /** The previous version of entry `id`, kept while a scan pinned the memtable. */
  olderOf(id: number): MemVersion | undefined {
    return this.older?.get(id);
  }

  /** Copies `length` bytes of `a` then of `b` into the arena, back to back; returns the offset in chunk `copiedChunk`. */
  private copyIn(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
    const aLen = a === undefined ? 0 : a.length;
    const len = aLen + (b === undefined ? 0 : b.length);
    let at: number;
    if (len >= ownChunkMinBytes) {
      this.chunks.push(Buffer.allocUnsafeSlow(len));
      this.bytes += len;
      this.copiedChunk = this.chunks.length - 1;
      at = 0;
      const own = this.chunks[this.copiedChunk] as Buffer;
      if (a !== undefined) own.set(a, 0);
      if (b !== undefined) own.set(b, aLen);
      return at;
    }
    if (this.chunkIndex < 0 || this.chunkUsed + len > this.chunk.length) {
      this.chunk = this.freeChunks.pop() ?? Buffer.allocUnsafeSlow(arenaChunkBytes);
      this.chunks.push(this.chunk);
      this.chunkIndex = this.chunks.length - 1;
      this.chunkUsed = 0;
    }
    at = this.chunkUsed;
    if (a !== undefined) this.chunk.set(a, at);
    if (b !== undefined) this.chunk.set(b, at + aLen);
    this.chunkUsed += len;
    // Arena space of an overwritten value is not reclaimed: it counts until the flush.
    this.bytes += len;
    this.copiedChunk = this.chunkIndex;
    return at;
  }

  /**
   * value undefined: a deletion. Key, value and metadata are copied into the
   * arena. `h1`, `h2`: the key's bloom hashes (bloom.ts bloomHash).
   */
  set(key: Uint8Array, h1: number, h2: number, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined): void {
    this.lastSeq = seq;
    const found = this.find(key, h1);
    if (found >= 0) {
      if (this.pins > 0) {
        const m = this.meta(found);
        const v = this.value(found);
        // Views stay valid: the arena is never overwritten.
        const older = (this.older ??= new Map());
        older.set(found, { seq: this.seqs[found] as number, value: v, meta: m, older: older.get(found) });
        this.bytes += olderVersionBytes;
      }
      this.setValue(found, seq, value, meta);
      return;
    }
    if (this.count === this.capacity) this.grow();
    const id = this.count++;
    this.keyOff[id] = this.copyIn(key, undefined);
    this.keyChunk[id] = this.copiedChunk;
    this.keyLen[id] = key.length;
    this.hashes[id] = h1 | 0;
    this.setValue(id, seq, value, meta);
    const table = this.table;
    const mask = table.length - 1;
    let slot = h1 & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = id + 1;
    const p = this.presence;
    const a = h1 & this.presenceMask;
    const b = h2 & this.presenceMask;
    p[a >>> 5] = (p[a >>> 5] as number) | (1 << (a & 31));
    p[b >>> 5] = (p[b >>> 5] as number) | (1 << (b & 31));
  }

  private setValue(id: number, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined): void {
    this.seqs[id] = seq;
    this.valueLen[id] = value === undefined ? -1 : value.length;
    this.metaLen[id] = meta === undefined ? -1 : meta.length;
    if (value === undefined && meta === undefined) {
      this.valueChunk[id] = 0;
      this.valueOff[id] = 0;
      return;
    }
    this.valueOff[id] = this.copyIn(value, meta);
    this.valueChunk[id] = this.copiedChunk;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    this.keyChunk = grownInt32(this.keyChunk, capacity);
    this.keyOff = grownInt32(this.keyOff, capacity);
    this.keyLen = grownInt32(this.keyLen, capacity);
    this.valueChunk = grownInt32(this.valueChunk, capacity);
    this.valueOff = grownInt32(this.valueOff, capacity);
    this.valueLen = grownInt32(this.valueLen, capacity);
    this.metaLen = grownInt32(this.metaLen, capacity);
    this.hashes = grownInt32(this.hashes, capacity);
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    this.seqs = seqs;
    const before = this.arrayBytes();
    this.capacity = capacity;
    // Rehash into a table twice as big.
    const table = new Int32Array(capacity * hashSlotsPerEntry);
    const mask = table.length - 1;
    for (let id = 0; id < this.count; id++) {
      let slot = (this.hashes[id] as number) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = id + 1;
    }
    this.table = table;
    this.bytes += this.arrayBytes() - before;
  }

  /** Byte order of entries a and b. The zero-padded 3-byte prefixes preserve order; only equal ones need the bytes. */
  private compareIds(a: number, b: number): number {
    const ka = this.chunks[this.keyChunk[a] as number] as Buffer;
    const kb = this.chunks[this.keyChunk[b] as number] as Buffer;
    const oa = this.keyOff[a] as number;
    const ob = this.keyOff[b] as number;
    const la = this.keyLen[a] as number;
    const lb = this.keyLen[b] as number;
    const n = la < lb ? la : lb;
    for (let i = 0; i < n; i++) {
      const d = (ka[oa + i] as number) - (kb[ob + i] as number);
      if (d !== 0) return d;
    }
    return la - lb;
  }

  /** Compares `key` with entry id's key (negative: key sorts first). */
  compareKey(key: Uint8Array, id: number): number {
    const k = this.chunks[this.keyChunk[id] as number] as Buffer;
    const o = this.keyOff[id] as number;
    const l = this.keyLen[id] as number;
    const n = key.length < l ? key.length : l;
    for (let i = 0; i < n; i++) {
      const d = (key[i] as number) - (k[o + i] as number);
      if (d !== 0) return d;
    }
    return key.length - l;
  }

  /** Every entry id in key order. The array returned is never modified afterwards (scans keep it). */
  sortedIds(): Int32Array {
    const count = this.count;
    if (this.sortedCount === count) return this.sorted;
    const pending = new Int32Array(count - this.sortedCount);
    for (let i = 0; i < pending.length; i++) pending[i] = this.sortedCount + i;
    pending.sort((a, b) => this.compareIds(a, b));
    const old = this.sorted;
    let out: Int32Array;
    if (old.length === 0) {
      out = pending;
    } else {
      out = new Int32Array(old.length + pending.length);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < old.length && j < pending.length) {
        out[o++] = this.compareIds(old[i] as number, pending[j] as number) <= 0 ? (old[i++] as number) : (pending[j++] as number);
      }
      while (i < old.length) out[o++] = old[i++] as number;
      while (j < pending.length) out[o++] = pending[j++] as number;
    }
    this.bytes += 4 * (out.length - old.length);
    this.sorted = out;
    this.sortedCount = count;
    return out;
  }

  /** Index of the first id in `ids` (a sortedIds() array) whose key is ≥ key. */
  lowerBound(ids: Int32Array, key: Uint8Array): number {
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareKey(key, ids[mid] as number) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
