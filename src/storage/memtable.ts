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
 * entry costs ~52 bytes of typed arrays (40 of fields, 8 of hash slots, 4 of
 * sorted ids), nothing survives a scavenge, and a 16 MiB memtable holds
 * about twice as many entries (fewer flushes and L0 files).
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
 * number, and puts the new bytes in fresh arena space. With no pins, a value
 * and metadata no longer than the ones they replace are written over them:
 * a working set overwritten again and again keeps its size and its key and
 * value side by side, where appending each overwrite spread the newest
 * values over the whole arena (a read then missed the cache twice) and filled
 * the memtable with dead bytes (a flush per `budget` bytes of overwrites).
 * Readers holding a view of the old bytes see them change; the engine's
 * contract allows that (views last until the next engine call), copies and
 * scans are unaffected. What bounds such a memtable is `logged`, the bytes
 * written through it (its WAL's size): `fill` is the larger of the two.
 */

/** An older version of an entry, kept only while a scan pins the memtable. */
export interface MemVersion {
  seq: number;
  /** undefined: a deletion (tombstone). */
  value: Buffer | undefined;
  meta: Buffer | undefined;
  older: MemVersion | undefined;
}

/**
 * Int32 fields per entry, interleaved in one array (see `fields`). A point
 * read touches every field of one entry: in one array they share a 32-byte
 * run (one CPU cache line) where nine parallel arrays cost nine cache misses.
 */
const entryStride = 8;
const fKeyChunk = 0;
const fKeyOff = 1;
const fKeyLen = 2;
const fValueChunk = 3;
const fValueOff = 4;
const fValueLen = 5;
const fMetaLen = 6;
const fHash = 7;
/** Typed-array bytes per entry: the Int32 fields, one Float64 sequence number and one Int32 room. */
const entryArrayBytes = entryStride * 4 + 8 + 4;
/** Hash slots per entry at most (load ≤ 1/2), 4 bytes each. */
const hashSlotsPerEntry = 2;
/** Charged to `logged` per write besides its bytes: about a WAL record's header and length varints. */
const loggedRecordBytes = 16;
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
/**
 * Both probes fall in one 512-bit (64-byte) block chosen by h1: a read that
 * misses the memtable touches one cache line of the filter instead of two
 * (the filter of a 16 MiB memtable is 128 KiB, read at random).
 */
const presenceBlockMask = 511;
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

/** Values up to this many bytes are copied by a JS loop: TypedArray#set costs a call into C++ per copy. */
const shortCopyBytes = 32;
/** The memtable sort insertion-sorts runs of this many ids, then merges them. */
const sortRunLength = 16;
/** Element moves between two pause checks of a sort done in steps (well under 1 ms of CPU). */
const sortStepMoves = 1 << 13;

/** Copies `src` into `target` at `at`. */
function copyBytesTo(target: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  if (n <= shortCopyBytes) {
    for (let i = 0; i < n; i++) target[at + i] = src[i] as number;
  } else {
    target.set(src, at);
  }
}

/** Bytes in a sort key: exact in a double (48 bits). */
const sortKeyBytes = 6;

/**
 * The bytes of buf[off, off + len) at positions `at` (ascending), big-endian
 * and zero-padded past the key's end: order-preserving among keys whose
 * bytes at every skipped position below the last one are equal.
 */
function keyBytesAt(buf: Uint8Array, off: number, len: number, at: Int32Array): number {
  let p = 0;
  for (let k = 0; k < sortKeyBytes; k++) {
    const i = at[k] as number;
    p = p * 256 + (i < len ? (buf[off + i] as number) : 0);
  }
  return p;
}

/** The sort looks for positions where keys differ within this many leading bytes (see sortSteps). */
const maxScannedKeyBytes = 64;

function grownInt32(a: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(length);
  b.set(a);
  return b;
}

export class Memtable {
  /** Approximate memory in bytes (arena, typed arrays, presence filter, older versions). */
  bytes = 0;
  /**
   * Bytes of every write applied (key, value, metadata and a record's
   * overhead), overwrites in place included: about the size of the WAL
   * behind this memtable, which a restart replays, so it counts towards the
   * flush like memory does.
   */
  logged = 0;
  /** Scans reading this memtable; while > 0 overwrites keep old versions. */
  pins = 0;
  /** Highest sequence number applied. */
  lastSeq = 0;
  private count = 0;
  private capacity: number;

  // Entry id → fields at id * entryStride. Key: chunk, offset, length. Value
  // and metadata are stored back to back at (valueChunk, valueOff) — right
  // after the key when the entry was created: valueLen -1 is a deletion,
  // metaLen -1 no metadata. fHash: the key's first bloom hash, the hash
  // table's home slot and a cheap inequality test before comparing bytes.
  private fields: Int32Array<ArrayBuffer>;
  private seqs: Float64Array<ArrayBuffer>;
  /**
   * Arena bytes at (valueChunk, valueOff) the entry may write its value and
   * metadata over: what its last fresh copy took, kept when a shorter one is
   * written in place, so sizes that go down and up again stay in place.
   * Apart from `fields`: only writes read it.
   */
  private rooms: Int32Array<ArrayBuffer>;
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
    this.fields = new Int32Array(capacity * entryStride);
    this.seqs = new Float64Array(capacity);
    this.rooms = new Int32Array(capacity);
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
      this.fields = old.fields;
      this.seqs = old.seqs;
      this.rooms = old.rooms;
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
    const b = (a & ~presenceBlockMask) | (h2 & presenceBlockMask);
    const p = this.presence;
    return ((p[a >>> 5] as number) & (1 << (a & 31))) !== 0 && ((p[b >>> 5] as number) & (1 << (b & 31))) !== 0;
  }

  get entries(): number {
    return this.count;
  }

  /** What the flush budget is compared with: memory, or the bytes written through the memtable if more (overwrites in place). */
  get fill(): number {
    return this.bytes > this.logged ? this.bytes : this.logged;
  }

  /** Id of the entry for `key` (h1: its first bloom hash), or -1. */
  find(key: Uint8Array, h1: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const hash = h1 | 0;
    const f = this.fields;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = (table[slot] as number) - 1;
      if (id < 0) return -1;
      if (f[id * entryStride + fHash] === hash && this.keyEquals(id, key)) return id;
    }
  }

  private keyEquals(id: number, key: Uint8Array): boolean {
    const f = this.fields;
    const at = id * entryStride;
    const len = f[at + fKeyLen] as number;
    if (len !== key.length) return false;
    const chunk = this.chunks[f[at + fKeyChunk] as number] as Buffer;
    const off = f[at + fKeyOff] as number;
    for (let i = 0; i < len; i++) if (chunk[off + i] !== key[i]) return false;
    return true;
  }

  isDeletion(id: number): boolean {
    return (this.fields[id * entryStride + fValueLen] as number) < 0;
  }

  /** The entry's key, a view into the arena. */
  key(id: number): Buffer {
    const f = this.fields;
    const at = id * entryStride;
    const off = f[at + fKeyOff] as number;
    return (this.chunks[f[at + fKeyChunk] as number] as Buffer).subarray(off, off + (f[at + fKeyLen] as number));
  }

  /** The entry's value, a view into the arena (undefined: a deletion). */
  value(id: number): Buffer | undefined {
    const f = this.fields;
    const at = id * entryStride;
    const len = f[at + fValueLen] as number;
    if (len < 0) return undefined;
    const off = f[at + fValueOff] as number;
    return (this.chunks[f[at + fValueChunk] as number] as Buffer).subarray(off, off + len);
  }

  /** The arena chunk holding entry `id`'s key (a flush reads ranges instead of making views). */
  keyChunk(id: number): Buffer {
    return this.chunks[this.fields[id * entryStride + fKeyChunk] as number] as Buffer;
  }

  keyOffset(id: number): number {
    return this.fields[id * entryStride + fKeyOff] as number;
  }

  keyLength(id: number): number {
    return this.fields[id * entryStride + fKeyLen] as number;
  }

  /** The chunk holding the value, then the metadata right after it (not meaningful for a deletion). */
  valueChunk(id: number): Buffer {
    return this.chunks[this.fields[id * entryStride + fValueChunk] as number] as Buffer;
  }

  valueOffset(id: number): number {
    return this.fields[id * entryStride + fValueOff] as number;
  }

  valueLength(id: number): number {
    return this.fields[id * entryStride + fValueLen] as number;
  }

  /** Metadata length of entry `id`, -1 when it has none. */
  metaLength(id: number): number {
    return this.fields[id * entryStride + fMetaLen] as number;
  }

  /**
   * Copies the entry's value to `target` at `at`, then its metadata right
   * after when `withMeta` (the caller sized `target` by valueLength and
   * metaLength): one copy, since they are stored back to back.
   */
  copyValue(id: number, target: Uint8Array, at = 0, withMeta = false): void {
    const f = this.fields;
    const e = id * entryStride;
    const off = f[e + fValueOff] as number;
    const metaLen = f[e + fMetaLen] as number;
    const end = off + (f[e + fValueLen] as number) + (withMeta && metaLen > 0 ? metaLen : 0);
    const chunk = this.chunks[f[e + fValueChunk] as number] as Buffer;
    // Short values are copied in JS: TypedArray#set and Buffer#copy cost a call into C++ each.
    if (end - off <= shortCopyBytes) {
      for (let i = off; i < end; i++) target[at++] = chunk[i] as number;
    } else {
      target.set(chunk.subarray(off, end), at);
    }
  }

  /** The entry's metadata, a view into the arena. */
  meta(id: number): Buffer | undefined {
    const f = this.fields;
    const at = id * entryStride;
    const len = f[at + fMetaLen] as number;
    if (len < 0) return undefined;
    const off = (f[at + fValueOff] as number) + Math.max(0, f[at + fValueLen] as number);
    return (this.chunks[f[at + fValueChunk] as number] as Buffer).subarray(off, off + len);
  }

  seqOf(id: number): number {
    return this.seqs[id] as number;
  }

  /** The previous version of entry `id`, kept while a scan pinned the memtable. */
  olderOf(id: number): MemVersion | undefined {
    return this.older?.get(id);
  }

  /**
   * Copies `a`, `b` and `c` (any may be undefined) into the arena, back to
   * back; returns the offset in chunk `copiedChunk`.
   */
  private copyIn(a: Uint8Array | undefined, b: Uint8Array | undefined, c: Uint8Array | undefined): number {
    const aLen = a === undefined ? 0 : a.length;
    const bLen = b === undefined ? 0 : b.length;
    const len = aLen + bLen + (c === undefined ? 0 : c.length);
    let target: Buffer;
    let at: number;
    if (len >= ownChunkMinBytes) {
      target = Buffer.allocUnsafeSlow(len);
      this.chunks.push(target);
      this.copiedChunk = this.chunks.length - 1;
      at = 0;
    } else {
      if (this.chunkIndex < 0 || this.chunkUsed + len > this.chunk.length) {
        this.chunk = this.freeChunks.pop() ?? Buffer.allocUnsafeSlow(arenaChunkBytes);
        this.chunks.push(this.chunk);
        this.chunkIndex = this.chunks.length - 1;
        this.chunkUsed = 0;
      }
      target = this.chunk;
      at = this.chunkUsed;
      this.chunkUsed += len;
      this.copiedChunk = this.chunkIndex;
    }
    if (a !== undefined) copyBytesTo(target, at, a);
    if (b !== undefined) copyBytesTo(target, at + aLen, b);
    if (c !== undefined) copyBytesTo(target, at + aLen + bLen, c);
    // Arena space of an overwritten value is not reclaimed: it counts until the flush.
    this.bytes += len;
    return at;
  }

  /**
   * value undefined: a deletion. Key, value and metadata are copied into the
   * arena. `h1`, `h2`: the key's bloom hashes (bloom.ts bloomHash).
   */
  set(key: Uint8Array, h1: number, h2: number, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined): void {
    this.lastSeq = seq;
    // Value and metadata lie back to back: this is the arena room they take.
    const payload = (value === undefined ? 0 : value.length) + (meta === undefined ? 0 : meta.length);
    this.logged += loggedRecordBytes + key.length + payload;
    const found = this.find(key, h1);
    if (found >= 0) {
      if (this.pins > 0) {
        const m = this.meta(found);
        const v = this.value(found);
        // Views stay valid: nothing is written over while pinned.
        const older = (this.older ??= new Map());
        older.set(found, { seq: this.seqs[found] as number, value: v, meta: m, older: older.get(found) });
        this.bytes += olderVersionBytes;
      } else if (this.overwriteInPlace(found, seq, value, meta, payload)) {
        return;
      }
      this.setValue(found, seq, value, meta, payload);
      return;
    }
    if (this.count === this.capacity) this.grow();
    const id = this.count++;
    // Key, value and metadata in one run: a read compares the key and copies the value from one place.
    const off = this.copyIn(key, value, meta);
    const f = this.fields;
    const e = id * entryStride;
    f[e + fKeyChunk] = this.copiedChunk;
    f[e + fKeyOff] = off;
    f[e + fKeyLen] = key.length;
    f[e + fValueChunk] = this.copiedChunk;
    f[e + fValueOff] = off + key.length;
    f[e + fValueLen] = value === undefined ? -1 : value.length;
    f[e + fMetaLen] = meta === undefined ? -1 : meta.length;
    f[e + fHash] = h1 | 0;
    this.seqs[id] = seq;
    this.rooms[id] = payload;
    const table = this.table;
    const mask = table.length - 1;
    let slot = h1 & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = id + 1;
    const p = this.presence;
    const a = h1 & this.presenceMask;
    const b = (a & ~presenceBlockMask) | (h2 & presenceBlockMask);
    p[a >>> 5] = (p[a >>> 5] as number) | (1 << (a & 31));
    p[b >>> 5] = (p[b >>> 5] as number) | (1 << (b & 31));
  }

  /**
   * Writes value and metadata over the entry's current ones when they fit
   * in its room (the space its last fresh copy took; nothing pins the
   * memtable: see the header); false, having changed nothing, when not. A value or metadata
   * that is itself a view of the arena takes fresh space (the copy could
   * overwrite what it reads).
   */
  private overwriteInPlace(id: number, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined, payload: number): boolean {
    const room = this.rooms[id] as number;
    if (room === 0 || payload > room) return false;
    const f = this.fields;
    const e = id * entryStride;
    const chunk = this.chunks[f[e + fValueChunk] as number] as Buffer;
    if ((value !== undefined && value.buffer === chunk.buffer) || (meta !== undefined && meta.buffer === chunk.buffer)) return false;
    const off = f[e + fValueOff] as number;
    if (value !== undefined) copyBytesTo(chunk, off, value);
    if (meta !== undefined) copyBytesTo(chunk, off + (value === undefined ? 0 : value.length), meta);
    f[e + fValueLen] = value === undefined ? -1 : value.length;
    f[e + fMetaLen] = meta === undefined ? -1 : meta.length;
    this.seqs[id] = seq;
    return true;
  }

  private setValue(id: number, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined, payload: number): void {
    this.seqs[id] = seq;
    const f = this.fields;
    const e = id * entryStride;
    f[e + fValueLen] = value === undefined ? -1 : value.length;
    f[e + fMetaLen] = meta === undefined ? -1 : meta.length;
    if (value === undefined && meta === undefined) {
      f[e + fValueChunk] = 0;
      f[e + fValueOff] = 0;
      this.rooms[id] = 0;
      return;
    }
    f[e + fValueOff] = this.copyIn(value, meta, undefined);
    f[e + fValueChunk] = this.copiedChunk;
    this.rooms[id] = payload;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    this.fields = grownInt32(this.fields, capacity * entryStride);
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    this.seqs = seqs;
    this.rooms = grownInt32(this.rooms, capacity);
    const before = this.arrayBytes();
    this.capacity = capacity;
    // Rehash into a table twice as big.
    const table = new Int32Array(capacity * hashSlotsPerEntry);
    const mask = table.length - 1;
    const f = this.fields;
    for (let id = 0; id < this.count; id++) {
      let slot = (f[id * entryStride + fHash] as number) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = id + 1;
    }
    this.table = table;
    this.bytes += this.arrayBytes() - before;
  }

  /** Byte order of entries a and b. */
  private compareIds(a: number, b: number): number {
    const f = this.fields;
    const ea = a * entryStride;
    const eb = b * entryStride;
    const ka = this.chunks[f[ea + fKeyChunk] as number] as Buffer;
    const kb = this.chunks[f[eb + fKeyChunk] as number] as Buffer;
    const oa = f[ea + fKeyOff] as number;
    const ob = f[eb + fKeyOff] as number;
    const la = f[ea + fKeyLen] as number;
    const lb = f[eb + fKeyLen] as number;
    const n = la < lb ? la : lb;
    for (let i = 0; i < n; i++) {
      const d = (ka[oa + i] as number) - (kb[ob + i] as number);
      if (d !== 0) return d;
    }
    return la - lb;
  }

  /** Compares `key` with entry id's key (negative: key sorts first). */
  compareKey(key: Uint8Array, id: number): number {
    const f = this.fields;
    const e = id * entryStride;
    const k = this.chunks[f[e + fKeyChunk] as number] as Buffer;
    const o = f[e + fKeyOff] as number;
    const l = f[e + fKeyLen] as number;
    const n = key.length < l ? key.length : l;
    for (let i = 0; i < n; i++) {
      const d = (key[i] as number) - (k[o + i] as number);
      if (d !== 0) return d;
    }
    return key.length - l;
  }

  /** Every entry id in key order. The array returned is never modified afterwards (scans keep it). */
  sortedIds(): Int32Array {
    const steps = this.sortSteps();
    let step = steps.next();
    while (step.done !== true) step = steps.next();
    return step.value;
  }

  /**
   * sortedIds() in steps of about `sortStepMoves` element moves, calling
   * `pause` between steps and awaiting what it returns, if anything (the
   * flush yields to the event loop once its time slice is used): one sort of
   * a 16 MiB memtable is ~150k entries and tens of ms of CPU.
   */
  async sortedIdsInSteps(pause: () => Promise<void> | undefined): Promise<Int32Array> {
    const steps = this.sortSteps();
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      const paused = pause();
      if (paused !== undefined) await paused;
    }
  }

  /**
   * Bottom-up merge sort of the ids added since the last sort (insertion
   * sort of runs of `sortRunLength` first), then a merge with the ids sorted
   * before. Compares 6-byte sort keys first (the bytes after the prefix every key shares), kept beside the ids, so
   * most comparisons touch neither the entry fields nor the arena; written
   * out in JS because TypedArray#sort with a comparator calls from C++ into
   * JS per comparison (the memtable's whole flush sort took one step of
   * tens of ms that way). Yields (undefined) after every ~`sortStepMoves`
   * moves; returns the sorted array.
   */
  private *sortSteps(): Generator<undefined, Int32Array> {
    const count = this.count;
    const from = this.sortedCount;
    if (from === count) return this.sorted;
    const n = count - from;
    let ids = new Int32Array(n);
    let pre = new Float64Array(n);
    let moves = 0;
    // The sort key of each entry: its bytes at the first 6 positions where keys
    // differ, skipping positions every key shares. A node's keys share bytes in
    // the middle (keyspace byte, 2-byte slot, then "user" or "key:0000…"): the 6
    // bytes after the shared prefix (slot and "user") tied for the ~6 keys of a
    // slot, and every tie is a compareIds (two arena reads). Lexicographic order
    // is kept: two keys first differ at a varying position, or beyond all six.
    const f = this.fields;
    const chunks = this.chunks;
    const e0 = from * entryStride;
    const firstKey = chunks[f[e0 + fKeyChunk] as number] as Buffer;
    const firstOff = f[e0 + fKeyOff] as number;
    // Positions below `scanned` exist in every key; each is marked when some key differs there from the first.
    let scanned = Math.min(maxScannedKeyBytes, f[e0 + fKeyLen] as number);
    const varies = new Uint8Array(maxScannedKeyBytes);
    // Positions from `limit` on no longer matter: 6 varying ones lie below it. Every
    // position below the final limit was compared for every key (limit only falls).
    let limit = scanned;
    let varying = 0;
    // Each key is a likely cache miss into the arena: a full memtable's took tens of ms in one step.
    for (let id = from + 1; id < count; id++) {
      const e = id * entryStride;
      const key = chunks[f[e + fKeyChunk] as number] as Buffer;
      const off = f[e + fKeyOff] as number;
      const len = f[e + fKeyLen] as number;
      if (len < scanned) scanned = len;
      const end = scanned < limit ? scanned : limit;
      const before = varying;
      for (let i = 0; i < end; i++) {
        if (varies[i] === 0 && key[off + i] !== firstKey[firstOff + i]) {
          varies[i] = 1;
          varying++;
        }
      }
      if (varying >= sortKeyBytes && varying !== before) {
        // Recount below `end`: the new limit is just past the 6th varying position.
        let seen = 0;
        for (let i = 0; i < end; i++) {
          if (varies[i] === 1 && ++seen === sortKeyBytes) {
            limit = i + 1;
            break;
          }
        }
        varying = seen;
      }
      if (++moves >= sortStepMoves) {
        moves = 0;
        yield undefined;
      }
    }
    const at = new Int32Array(sortKeyBytes);
    let picked = 0;
    for (let i = 0; i < scanned && picked < sortKeyBytes; i++) if (varies[i] === 1) at[picked++] = i;
    // Fewer varying positions than sort key bytes: the positions past the scanned ones, in order.
    for (let i = scanned; picked < sortKeyBytes; i++) at[picked++] = i;
    for (let i = 0; i < n; i++) {
      const e = (from + i) * entryStride;
      ids[i] = from + i;
      pre[i] = keyBytesAt(chunks[f[e + fKeyChunk] as number] as Buffer, f[e + fKeyOff] as number, f[e + fKeyLen] as number, at);
      if (++moves >= sortStepMoves) {
        moves = 0;
        yield undefined;
      }
    }
    for (let lo = 0; lo < n; lo += sortRunLength) {
      const hi = Math.min(n, lo + sortRunLength);
      for (let i = lo + 1; i < hi; i++) {
        const id = ids[i] as number;
        const p = pre[i] as number;
        let j = i - 1;
        while (j >= lo && ((pre[j] as number) > p || ((pre[j] as number) === p && this.compareIds(ids[j] as number, id) > 0))) {
          ids[j + 1] = ids[j] as number;
          pre[j + 1] = pre[j] as number;
          j--;
        }
        ids[j + 1] = id;
        pre[j + 1] = p;
      }
      moves += (hi - lo) * 4;
      if (moves >= sortStepMoves) {
        moves = 0;
        yield undefined;
      }
    }
    let outIds = new Int32Array(n);
    let outPre = new Float64Array(n);
    for (let width = sortRunLength; width < n; width *= 2) {
      for (let lo = 0; lo < n; lo += 2 * width) {
        const mid = Math.min(n, lo + width);
        const hi = Math.min(n, lo + 2 * width);
        let i = lo;
        let j = mid;
        let o = lo;
        while (i < mid && j < hi) {
          const pi = pre[i] as number;
          const pj = pre[j] as number;
          if (pi < pj || (pi === pj && this.compareIds(ids[i] as number, ids[j] as number) <= 0)) {
            outIds[o] = ids[i] as number;
            outPre[o++] = pi;
            i++;
          } else {
            outIds[o] = ids[j] as number;
            outPre[o++] = pj;
            j++;
          }
          // Inside the merge, not per merge: the last passes merge halves of the whole memtable
          // (one step of tens of ms when counted per merge).
          if (++moves >= sortStepMoves) {
            moves = 0;
            yield undefined;
          }
        }
        // The rest of one side: a native copy when long (a merge of two halves can leave tens of thousands).
        const restFrom = i < mid ? i : j;
        const restTo = i < mid ? mid : hi;
        if (restTo - restFrom > 256) {
          outIds.set(ids.subarray(restFrom, restTo), o);
          outPre.set(pre.subarray(restFrom, restTo), o);
        } else {
          for (let r = restFrom; r < restTo; r++, o++) {
            outIds[o] = ids[r] as number;
            outPre[o] = pre[r] as number;
          }
        }
      }
      const ti = ids;
      ids = outIds;
      outIds = ti;
      const tp = pre;
      pre = outPre;
      outPre = tp;
    }
    // Another caller (a scan) may have sorted while this one paused.
    if (this.sortedCount === count) return this.sorted;
    const old = this.sorted;
    let out: Int32Array;
    if (old.length === 0) {
      out = ids;
    } else {
      out = new Int32Array(old.length + n);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < old.length && j < n) {
        out[o++] = this.compareIds(old[i] as number, ids[j] as number) <= 0 ? (old[i++] as number) : (ids[j++] as number);
      }
      while (i < old.length) out[o++] = old[i++] as number;
      while (j < n) out[o++] = ids[j++] as number;
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
