/**
 * The recency order both read caches share: an intrusive doubly linked list
 * over their slots (a Map used as its own LRU — delete and re-insert on every
 * hit, evict with keys().next() — degrades badly: V8 leaves deleted slots at
 * the front of the table, and every eviction walks over them), the bytes the
 * slots hold against a capacity, and hit counters. Subclasses own the lookup
 * (a Map for rows, per-table arrays for blocks) and what eviction does.
 */

export interface LruLinks<S> {
  bytes: number;
  newer: S | undefined;
  older: S | undefined;
}

export abstract class LruOrder<S extends LruLinks<S>> {
  protected newest: S | undefined = undefined;
  protected oldest: S | undefined = undefined;
  protected used = 0;
  hits = 0;
  misses = 0;

  /** `capacity` in the unit of the slots' `bytes`. */
  constructor(protected readonly capacity: number) {}

  get usedBytes(): number {
    return this.used;
  }

  hitRatio(): number {
    const total = this.hits + this.misses;
    return total === 0 ? 0 : this.hits / total;
  }

  /** Counts a hit and makes the slot the newest. */
  protected touch(slot: S): void {
    this.hits++;
    if (slot !== this.newest) {
      this.unlink(slot);
      this.pushNewest(slot);
    }
  }

  /** Makes the slot the newest without counting a hit (a second chance, see BlockCache). */
  protected requeue(slot: S): void {
    if (slot !== this.newest) {
      this.unlink(slot);
      this.pushNewest(slot);
    }
  }

  /** Makes a new slot the newest and charges its bytes. */
  protected link(slot: S): void {
    this.pushNewest(slot);
    this.used += slot.bytes;
  }

  /** Takes a slot out of the order and gives its bytes back. */
  protected unlinkCharged(slot: S): void {
    this.unlink(slot);
    this.used -= slot.bytes;
  }

  protected resetOrder(): void {
    this.newest = this.oldest = undefined;
    this.used = 0;
  }

  private unlink(slot: S): void {
    if (slot.newer !== undefined) slot.newer.older = slot.older;
    else this.newest = slot.older;
    if (slot.older !== undefined) slot.older.newer = slot.newer;
    else this.oldest = slot.newer;
    slot.newer = slot.older = undefined;
  }

  private pushNewest(slot: S): void {
    slot.older = this.newest;
    slot.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = slot;
    this.newest = slot;
    if (this.oldest === undefined) this.oldest = slot;
  }
}
