/**
 * Requests awaiting replies, indexed by request id. A slot array addressed
 * by `id & (capacity - 1)` instead of a Map: a Map under constant set/delete
 * churn keeps reallocating its hash table, and those tables, referenced from
 * the long-lived Map, were promoted to the old generation by the tens of
 * megabytes per second and forced frequent full collections (measured: a
 * 64-in-flight client ran a Mark-Compact every ~0.5 s; with this table, none).
 */
import { assert } from '../core/index.ts';

export interface PendingEntry {
  readonly id: number;
}

const initialCapacity = 64;
const maxRequestId = 0xffff_ffff;

export class PendingTable<T extends PendingEntry> {
  private slots: Array<T | undefined> = new Array<T | undefined>(initialCapacity).fill(undefined);
  private count = 0;
  private nextId: number;

  /** `firstId` lets tests start near the wrap-around. */
  constructor(firstId = 1) {
    assert(Number.isInteger(firstId) && firstId >= 1 && firstId <= maxRequestId, `a first request id must be in 1..${maxRequestId}`);
    this.nextId = firstId;
  }

  get size(): number {
    return this.count;
  }

  /**
   * A fresh id whose slot is free. Ids increase (wrapping after 2^32 - 1 and
   * skipping 0), so a late reply to a timed-out request cannot match a newer one
   * unless 2^32 requests happened in between.
   */
  allocateId(): number {
    if (this.count >= this.slots.length / 2) this.grow();
    for (;;) {
      const id = this.nextId;
      this.nextId = id === maxRequestId ? 1 : id + 1;
      if (this.slots[id & (this.slots.length - 1)] === undefined) return id;
    }
  }

  add(entry: T): void {
    const slot = entry.id & (this.slots.length - 1);
    assert(this.slots[slot] === undefined, `request slot ${slot} is taken`);
    this.slots[slot] = entry;
    this.count++;
  }

  /** Removes and returns the entry with this id; undefined for an unknown or late id. */
  take(id: number): T | undefined {
    const slot = id & (this.slots.length - 1);
    const entry = this.slots[slot];
    if (entry === undefined || entry.id !== id) return undefined;
    this.slots[slot] = undefined;
    this.count--;
    return entry;
  }

  /** Removes and returns every entry for which `test` holds. */
  removeWhere(test: (entry: T) => boolean): T[] {
    const removed: T[] = [];
    if (this.count === 0) return removed;
    for (let slot = 0; slot < this.slots.length; slot++) {
      const entry = this.slots[slot];
      if (entry !== undefined && test(entry)) {
        this.slots[slot] = undefined;
        this.count--;
        removed.push(entry);
      }
    }
    return removed;
  }

  /** Calls `visit` for every entry (in slot order). */
  forEach(visit: (entry: T) => void): void {
    if (this.count === 0) return;
    for (const entry of this.slots) if (entry !== undefined) visit(entry);
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (const entry of old) if (entry !== undefined) this.slots[entry.id & (this.slots.length - 1)] = entry;
  }
}
