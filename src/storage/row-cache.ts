/**
 * The row cache: hot rows (key, value, metadata) copied into one slab, so a
 * hot key's lookup is a hash probe and a compare instead of the SSTable path.
 *
 * No JS object per row: rows live back to back in one ArrayBuffer used as a
 * ring (a log, as in Segcache / log-structured caches), found through an
 * open-addressing table in an Int32Array (linear probing on the key's 32-bit
 * hash, backward-shift deletion). The row cache this replaces kept a Map, an
 * LRU slot, a row object and a Buffer per row (~320 bytes of heap each): it
 * grew the old generation, and its admissions cost ~0.5 µs per read.
 *
 * Eviction is CLOCK over the ring: a hit sets the row's referenced bit; the
 * row at the tail, when referenced, is moved to the head with its bit
 * cleared (a memmove within the slab) instead of being evicted. Admission:
 * the key must have been read before within the doorkeeper's window
 * (TinyLFU's doorkeeper, two bits per key, a window of one mark per index
 * slot: longer than a pass over as many keys as fit), and when the slab is
 * full the row at the tail must be unreferenced; a referenced tail is
 * requeued and the candidate refused. So a one-pass read of many keys
 * (bench:engine's read-hit) admits almost nothing, hot rows stay, and
 * uniform reads over more keys than fit replace only rows nobody read since
 * the hand last passed (each refusal still advances the hand, so a changed
 * hot set gets in after one turn of the clock).
 *
 * Row layout (little-endian Int32 words at an 8-byte aligned offset):
 *   0 size in bytes (rounded to 8; negative: padding to the end of the slab)
 *   1 hash   2 key length   3 value length   4 metadata length (-1: none)
 *   5 state (bit 0 live, bit 1 referenced)
 *   then key, value, metadata bytes.
 */
import { asBuffer } from '../core/index.ts';

const headerBytes = 24;
const wSize = 0;
const wHash = 1;
const wKeyLen = 2;
const wValueLen = 3;
const wMetaLen = 4;
const wState = 5;
const stateLive = 1;
const stateReferenced = 2;
/**
 * One index slot per 96 bytes of budget (rounded up to a power of two): rows
 * of ≥ 144 bytes (a 16-byte key, a 100-byte value and the header) load it
 * ≤ 2/3, and the index takes 8 bytes per slot out of the budget.
 */
const slabBytesPerSlot = 96;
/** The index never holds more than this fraction of its slots (the cache then evicts, free bytes or not). */
const maxLoadNumerator = 3;
const maxLoadDenominator = 4;
/** A row larger than this fraction of the slab is not cached (it would evict too many others). */
const maxRowFractionDivisor = 16;
/**
 * Doorkeeper bits per index slot; it forgets after one mark per slot (≤ 25 %
 * of its bits set, two per mark). The window is long enough that a key
 * read once per pass over as many keys as the cache holds is seen again,
 * and a one-pass read of many keys is mostly not (false positives ≤ ~6 %).
 */
const seenBitsPerSlot = 8;
/** Keys up to this many bytes are compared in JS (Buffer#compare costs a call into C++). */
const jsCompareMaxBytes = 64;

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

export class RowCache {
  /** Bytes the slab and the index take together (the configured budget, to within rounding). */
  readonly budgetBytes: number;
  private slab: Buffer;
  private words: Int32Array;
  private readonly slabBytes: number;
  private readonly maxRowBytes: number;
  /** [hash, row offset + 1] per slot; offset 0 marks an empty slot. */
  private slots: Int32Array;
  private mask: number;
  private readonly slotCount: number;
  /** The slab and index are allocated by the first admission: an engine nobody reads from tables never pays for them. */
  private allocated = false;
  private readonly maxEntries: number;
  private head = 0;
  private tail = 0;
  /** Bytes between tail and head: live and dead rows and padding. */
  private used = 0;
  private readonly seen: Uint32Array;
  private readonly seenMask: number;
  private readonly seenShift: number;
  private seenMarks = 0;
  entries = 0;
  liveBytes = 0;
  hits = 0;
  misses = 0;
  admissions = 0;
  refusals = 0;
  evictions = 0;

  constructor(capacityBytes: number) {
    let slotCount = 16;
    while (slotCount * slabBytesPerSlot < capacityBytes) slotCount *= 2;
    const indexBytes = slotCount * 8;
    // The index comes out of the budget; a budget too small for both caches nothing.
    this.slabBytes = capacityBytes > 2 * indexBytes ? (capacityBytes - indexBytes) & ~7 : 0;
    this.budgetBytes = this.slabBytes === 0 ? 0 : this.slabBytes + indexBytes;
    if (this.slabBytes === 0) slotCount = 2;
    this.slotCount = slotCount;
    this.slab = Buffer.alloc(8);
    this.words = new Int32Array(2);
    this.slots = new Int32Array(2);
    this.mask = 0;
    this.maxRowBytes = Math.floor(this.slabBytes / maxRowFractionDivisor);
    this.maxEntries = Math.floor((slotCount * maxLoadNumerator) / maxLoadDenominator);
    const seenBits = slotCount * seenBitsPerSlot;
    this.seen = new Uint32Array(seenBits / 32);
    this.seenMask = seenBits - 1;
    this.seenShift = 32 - Math.log2(seenBits);
  }

  get enabled(): boolean {
    return this.slabBytes > 0;
  }

  private allocate(): void {
    // A fresh ArrayBuffer, not a pooled Buffer: large ones are mapped lazily, so untouched pages cost no RSS.
    const memory = new ArrayBuffer(this.slabBytes);
    this.slab = Buffer.from(memory);
    this.words = new Int32Array(memory);
    this.slots = new Int32Array(2 * this.slotCount);
    this.mask = this.slotCount - 1;
    this.allocated = true;
  }

  /** Bytes held: live rows, rows invalidated but not yet reclaimed, padding, plus the index. */
  get usedBytes(): number {
    return this.allocated ? this.used + this.slots.byteLength : 0;
  }

  hitRatio(): number {
    const total = this.hits + this.misses;
    return total === 0 ? 0 : this.hits / total;
  }

  /** The row's offset in the slab (for the accessors below), or -1. A hit marks the row referenced. */
  find(key: Uint8Array, hash: number): number {
    // The index holds hashes as Int32: compare them as such.
    hash |= 0;
    const slots = this.slots;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const at = slots[2 * i + 1] as number;
      if (at === 0) {
        this.misses++;
        return -1;
      }
      if (slots[2 * i] === hash && this.keyEquals(at - 1, key)) {
        const w = (at - 1) >> 2;
        this.words[w + wState] = stateLive | stateReferenced;
        this.hits++;
        return at - 1;
      }
    }
  }

  private keyEquals(row: number, key: Uint8Array): boolean {
    const n = key.length;
    if (this.words[(row >> 2) + wKeyLen] !== n) return false;
    const start = row + headerBytes;
    const slab = this.slab;
    if (n > jsCompareMaxBytes) return slab.compare(asBuffer(key), 0, n, start, start + n) === 0;
    for (let i = 0; i < n; i++) if (slab[start + i] !== key[i]) return false;
    return true;
  }

  valueLength(row: number): number {
    return this.words[(row >> 2) + wValueLen] as number;
  }

  /** -1 when the row has no metadata. */
  metaLength(row: number): number {
    return this.words[(row >> 2) + wMetaLen] as number;
  }

  valueStart(row: number): number {
    return row + headerBytes + (this.words[(row >> 2) + wKeyLen] as number);
  }

  /** The slab: the value of `row` is `[valueStart, valueStart + valueLength)`, its metadata right after. */
  get bytes(): Buffer {
    return this.slab;
  }

  /**
   * Whether a row read from a table may enter: only a key read before
   * within the doorkeeper's window; reserve() then refuses it if it would
   * evict a referenced row (see the file comment).
   */
  private admissible(hash: number): boolean {
    return this.seenBefore(hash);
  }

  /** The doorkeeper: true on the key's second mark within the window, else marks it. */
  private seenBefore(hash: number): boolean {
    const seen = this.seen;
    const a = hash & this.seenMask;
    const b = (Math.imul(hash, 0x9e3779b1) >>> this.seenShift) & this.seenMask;
    const flagA = 1 << (a & 31);
    const flagB = 1 << (b & 31);
    if (((seen[a >>> 5] as number) & flagA) !== 0 && ((seen[b >>> 5] as number) & flagB) !== 0) return true;
    seen[a >>> 5] = (seen[a >>> 5] as number) | flagA;
    seen[b >>> 5] = (seen[b >>> 5] as number) | flagB;
    if (++this.seenMarks >= this.slotCount) {
      seen.fill(0);
      this.seenMarks = 0;
    }
    return false;
  }

  /**
   * Offers the row `key` → `src[valueStart, valueEnd)` with metadata
   * `src[metaStart, metaEnd)` (metaStart < 0: none), just read from a table.
   * The caller has checked the key is not cached (find returned -1).
   */
  offer(key: Uint8Array, hash: number, src: Uint8Array, valueStart: number, valueEnd: number, metaStart: number, metaEnd: number): void {
    hash |= 0;
    const keyLength = key.length;
    const valueLength = valueEnd - valueStart;
    const metaLength = metaStart < 0 ? 0 : metaEnd - metaStart;
    const size = roundUp8(headerBytes + keyLength + valueLength + metaLength);
    if (size > this.maxRowBytes || !this.admissible(hash)) return;
    if (!this.allocated) this.allocate();
    const row = this.reserve(size);
    if (row < 0) {
      this.refusals++;
      return;
    }
    const slab = this.slab;
    const w = row >> 2;
    const words = this.words;
    words[w + wSize] = size;
    words[w + wHash] = hash;
    words[w + wKeyLen] = keyLength;
    words[w + wValueLen] = valueLength;
    words[w + wMetaLen] = metaStart < 0 ? -1 : metaLength;
    words[w + wState] = stateLive;
    let at = row + headerBytes;
    at = copyInto(slab, at, key, 0, keyLength);
    at = copyInto(slab, at, src, valueStart, valueEnd);
    if (metaStart >= 0) copyInto(slab, at, src, metaStart, metaEnd);
    this.head = row + size;
    this.used += size;
    this.insertSlot(hash, row);
    this.entries++;
    this.liveBytes += size;
    this.admissions++;
  }

  /** Drops the key's row, if cached (a write or a compaction-filter drop made it stale). */
  invalidate(key: Uint8Array, hash: number): void {
    if (this.entries === 0) return;
    hash |= 0;
    const slots = this.slots;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const at = slots[2 * i + 1] as number;
      if (at === 0) return;
      if (slots[2 * i] === hash && this.keyEquals(at - 1, key)) {
        // The bytes stay in the ring, dead, until the tail passes them.
        const w = (at - 1) >> 2;
        this.words[w + wState] = 0;
        this.liveBytes -= this.words[w + wSize] as number;
        this.entries--;
        this.removeSlot(i);
        return;
      }
    }
  }

  clear(): void {
    this.slots.fill(0);
    this.seen.fill(0);
    this.seenMarks = 0;
    this.head = this.tail = this.used = 0;
    this.entries = 0;
    this.liveBytes = 0;
  }

  /**
   * Contiguous room for `size` bytes at `head` (the offset returned), making
   * it by evicting from the tail; -1 when that would evict a referenced row
   * (which is requeued instead: the clock hand moves on).
   */
  private reserve(size: number): number {
    const capacity = this.slabBytes;
    for (;;) {
      if (this.used === 0) this.head = this.tail = 0;
      if (this.head > this.tail || this.used === 0) {
        // Free: [head, capacity) and [0, tail).
        if (capacity - this.head >= size && this.entries < this.maxEntries) return this.head;
        if (capacity - this.head >= size) {
          if (!this.evictTail()) return -1;
          continue;
        }
        if (this.head < capacity) {
          this.words[this.head >> 2] = -(capacity - this.head);
          this.used += capacity - this.head;
        }
        this.head = 0;
        continue;
      }
      // Free: [head, tail).
      if (this.tail - this.head >= size && this.entries < this.maxEntries) return this.head;
      if (!this.evictTail()) return -1;
    }
  }

  /** Frees the row (or padding) at the tail; false when it was referenced and was requeued instead. */
  private evictTail(): boolean {
    const row = this.tail;
    const w = row >> 2;
    const words = this.words;
    const sizeWord = words[w + wSize] as number;
    const size = sizeWord < 0 ? -sizeWord : sizeWord;
    if (size === 0) throw new Error(`row cache slab has an empty record at ${row}`);
    if (sizeWord > 0) {
      const state = words[w + wState] as number;
      if ((state & stateReferenced) !== 0 && this.head <= row) {
        // Second chance: the row moves to the head (the free gap [head, tail) moves past it).
        words[w + wState] = stateLive;
        const to = this.head;
        if (to !== row) {
          // Read before the move: an overlapping copy overwrites the old header.
          const hash = words[w + wHash] as number;
          this.slab.copyWithin(to, row, row + size);
          this.moveSlot(hash, row, to);
        }
        this.head = to + size;
        this.advanceTail(size);
        return false;
      }
      if ((state & stateLive) !== 0) {
        this.removeSlot(this.slotOf(words[w + wHash] as number, row));
        this.entries--;
        this.liveBytes -= size;
        this.evictions++;
      }
    }
    this.used -= size;
    this.advanceTail(size);
    return true;
  }

  private advanceTail(size: number): void {
    this.tail += size;
    if (this.tail >= this.slabBytes) this.tail = 0;
    if (this.head >= this.slabBytes) this.head = 0;
  }

  private insertSlot(hash: number, row: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = hash & mask;
    while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    slots[2 * i] = hash;
    slots[2 * i + 1] = row + 1;
  }

  private slotOf(hash: number, row: number): number {
    const slots = this.slots;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const at = slots[2 * i + 1] as number;
      if (at === row + 1) return i;
      if (at === 0) throw new Error(`row cache index lost the row at ${row}`);
    }
  }

  private moveSlot(hash: number, from: number, to: number): void {
    this.slots[2 * this.slotOf(hash, from) + 1] = to + 1;
  }

  /** Empties slot i, shifting later members of its probe run back (linear probing needs no tombstones). */
  private removeSlot(i: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = i;
    for (let j = (i + 1) & mask; slots[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = (slots[2 * j] as number) & mask;
      // The entry at j may fill the hole only if its home is not cyclically within (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        slots[2 * hole] = slots[2 * j] as number;
        slots[2 * hole + 1] = slots[2 * j + 1] as number;
        hole = j;
      }
    }
    slots[2 * hole] = 0;
    slots[2 * hole + 1] = 0;
  }
}

/** Copies src[start, end) to dst at `at`; short runs in JS (TypedArray#set is a call into C++). */
function copyInto(dst: Buffer, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n <= 32) {
    for (let i = start; i < end; i++) dst[at++] = src[i] as number;
    return at;
  }
  dst.set(start === 0 && end === src.length ? src : Uint8Array.prototype.subarray.call(src, start, end), at);
  return at + n;
}
