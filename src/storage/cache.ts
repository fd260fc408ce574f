/**
 * LRU caches for the read path: a Map for lookup and an intrusive doubly
 * linked list for recency. (A Map used as its own LRU — delete and re-insert
 * on every hit, evict with keys().next() — degrades badly: V8 leaves deleted
 * slots at the front of the table, and every eviction walks over them.)
 */

interface Slot<K, V> {
  key: K;
  value: V;
  bytes: number;
  newer: Slot<K, V> | undefined;
  older: Slot<K, V> | undefined;
}

export class LruCache<K, V> {
  private readonly map = new Map<K, Slot<K, V>>();
  private newest: Slot<K, V> | undefined = undefined;
  private oldest: Slot<K, V> | undefined = undefined;
  private used = 0;
  hits = 0;
  misses = 0;

  /** `capacity` in the unit of the `bytes` passed to set. */
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.used;
  }

  private unlink(slot: Slot<K, V>): void {
    if (slot.newer !== undefined) slot.newer.older = slot.older;
    else this.newest = slot.older;
    if (slot.older !== undefined) slot.older.newer = slot.newer;
    else this.oldest = slot.newer;
    slot.newer = slot.older = undefined;
  }

  private pushNewest(slot: Slot<K, V>): void {
    slot.older = this.newest;
    slot.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = slot;
    this.newest = slot;
    if (this.oldest === undefined) this.oldest = slot;
  }

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (slot !== this.newest) {
      this.unlink(slot);
      this.pushNewest(slot);
    }
    return slot.value;
  }

  set(key: K, value: V, bytes: number): void {
    if (bytes > this.capacity) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.used -= old.bytes;
      this.unlink(old);
    }
    const slot: Slot<K, V> = { key, value, bytes, newer: undefined, older: undefined };
    this.map.set(key, slot);
    this.pushNewest(slot);
    this.used += bytes;
    while (this.used > this.capacity && this.oldest !== undefined) {
      const victim = this.oldest;
      this.unlink(victim);
      this.map.delete(victim.key);
      this.used -= victim.bytes;
    }
  }

  delete(key: K): void {
    const slot = this.map.get(key);
    if (slot !== undefined) {
      this.used -= slot.bytes;
      this.unlink(slot);
      this.map.delete(key);
    }
  }

  clear(): void {
    this.map.clear();
    this.newest = this.oldest = undefined;
    this.used = 0;
  }

  hitRatio(): number {
    const total = this.hits + this.misses;
    return total === 0 ? 0 : this.hits / total;
  }
}
