/**
 * LRU caches for the read path. A Map keeps insertion order, so "move to the
 * back on hit, evict from the front" gives LRU with two hash operations.
 */

export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private used = 0;
  hits = 0;
  misses = 0;

  /** `capacity` in the unit of the `bytes` passed to set (bytes, or 1 per entry). */
  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.used;
  }

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, slot);
    return slot.value;
  }

  set(key: K, value: V, bytes: number): void {
    if (bytes > this.capacity) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.used -= old.bytes;
      this.map.delete(key);
    }
    this.map.set(key, { value, bytes });
    this.used += bytes;
    while (this.used > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const slot = this.map.get(oldest.value);
      this.map.delete(oldest.value);
      this.used -= slot?.bytes ?? 0;
    }
  }

  delete(key: K): void {
    const slot = this.map.get(key);
    if (slot !== undefined) {
      this.used -= slot.bytes;
      this.map.delete(key);
    }
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  hitRatio(): number {
    const total = this.hits + this.misses;
    return total === 0 ? 0 : this.hits / total;
  }
}
