/**
 * The row cache: an LRU keyed by a Map (the recency order is LruOrder's),
 * with presence counters so most lookups of uncached keys skip the Map.
 */
import { LruOrder } from './lru-order.ts';

interface Slot<K, V> {
  key: K;
  value: V;
  bytes: number;
  newer: Slot<K, V> | undefined;
  older: Slot<K, V> | undefined;
}

export class LruCache<K, V> extends LruOrder<Slot<K, V>> {
  private readonly map = new Map<K, Slot<K, V>>();
  private spareSlot: Slot<K, V> | undefined = undefined;

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.touch(slot);
    return slot.value;
  }

  set(key: K, value: V, bytes: number): void {
    if (bytes > this.capacity) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.unlinkCharged(old);
      this.removed(old.value);
    }
    // Reuse the slot of the last eviction: steady-state caches evict on every set,
    // and fresh slots would only become old-generation garbage.
    let slot = this.spareSlot;
    if (slot === undefined) {
      slot = { key, value, bytes, newer: undefined, older: undefined };
    } else {
      this.spareSlot = undefined;
      slot.key = key;
      slot.value = value;
      slot.bytes = bytes;
    }
    this.map.set(key, slot);
    this.link(slot);
    while (this.used > this.capacity && this.oldest !== undefined) {
      const victim = this.oldest;
      this.unlinkCharged(victim);
      this.map.delete(victim.key);
      this.spareSlot = victim;
      this.removed(victim.value);
    }
  }

  /** Called with each value that left the cache by eviction, replacement or delete (not clear). */
  protected removed(_value: V): void {}

  delete(key: K): void {
    const slot = this.map.get(key);
    if (slot !== undefined) {
      this.unlinkCharged(slot);
      this.map.delete(key);
      this.removed(slot.value);
    }
  }

  clear(): void {
    this.spareSlot = undefined;
    this.map.clear();
    this.resetOrder();
  }
}

/** A row-cache entry: a copy of the value and metadata, and the key's first bloom hash. */
export interface CachedRow {
  value: Buffer;
  meta: Buffer | undefined;
  hash: number;
}

/** Presence counters per byte of row-cache budget (an entry takes ≥ 96 bytes, so load stays ≤ 1/3). */
const rowCacheBytesPerCounter = 32;
const minRowCacheCounters = 1024;
const saturatedCount = 0xffff;
/** The doorkeeper forgets after counters/32 marks, so at most ~3 % of its bits are set. */
const seenMarksPerResetDivisor = 32;

/**
 * The row cache, with counters over the keys' bloom hashes (a counting
 * filter with one probe): a lookup of a key the cache cannot hold, which is
 * most of them under uniform reads, then needs neither the key string nor a
 * Map probe. A saturated counter stays saturated (only false positives).
 */
export class RowCache extends LruCache<string, CachedRow> {
  private readonly counts: Uint16Array;
  private readonly mask: number;
  /** Doorkeeper bits (as in TinyLFU): keys read from an SSTable recently, by hash. */
  private readonly seen: Uint32Array;
  private seenMarks = 0;
  /** The doorkeeper's second bit is the top bits of a multiplicative hash: 32 − log2(bits). */
  private readonly seenShift: number;

  constructor(capacityBytes: number) {
    super(capacityBytes);
    let n = minRowCacheCounters;
    while (n < capacityBytes / rowCacheBytesPerCounter) n *= 2;
    this.counts = new Uint16Array(capacityBytes === 0 ? 1 : n);
    this.mask = this.counts.length - 1;
    this.seen = new Uint32Array(Math.max(1, this.counts.length / 32));
    this.seenShift = 32 - Math.log2(Math.max(32, this.counts.length));
  }

  /**
   * Whether a key just read from an SSTable should enter the cache: only on
   * its second read within the last `counts.length / 32` SSTable reads. Hot
   * keys get in at once; uniformly random reads, which a row cache cannot
   * help, rarely do (each admission evicts a row and leaves old-generation
   * garbage, which grew the heap by ~50 bytes per read when one read in
   * eight was admitted). Two bits per key: with one, ~1 % of first reads
   * were admitted by a false positive (18,000 rows at 2M keys, 0 hits), and
   * those surviving rows were enough to grow V8's young generation.
   */
  shouldAdmit(hash: number): boolean {
    const seen = this.seen;
    const a = hash & this.mask;
    const b = (Math.imul(hash, 0x9e3779b1) >>> this.seenShift) & this.mask;
    const flagA = 1 << (a & 31);
    const flagB = 1 << (b & 31);
    if (((seen[a >>> 5] as number) & flagA) !== 0 && ((seen[b >>> 5] as number) & flagB) !== 0) return true;
    seen[a >>> 5] = (seen[a >>> 5] as number) | flagA;
    seen[b >>> 5] = (seen[b >>> 5] as number) | flagB;
    if (++this.seenMarks >= this.counts.length / seenMarksPerResetDivisor) {
      seen.fill(0);
      this.seenMarks = 0;
    }
    return false;
  }

  mayContain(hash: number): boolean {
    return this.counts[hash & this.mask] !== 0;
  }

  add(key: string, row: CachedRow, bytes: number): void {
    if (bytes > this.capacity) return;
    const i = row.hash & this.mask;
    const c = this.counts[i] as number;
    if (c !== saturatedCount) this.counts[i] = c + 1;
    this.set(key, row, bytes);
  }

  protected override removed(row: CachedRow): void {
    const i = row.hash & this.mask;
    const c = this.counts[i] as number;
    if (c !== saturatedCount) this.counts[i] = c - 1;
  }

  override clear(): void {
    super.clear();
    this.counts.fill(0);
  }
}
