/**
 * The block cache: an LRU of decoded data blocks, bounded by the bytes they
 * really hold (backing buffer plus object overhead), that recycles the
 * evicted blocks (object and buffer) for the next block read from disk.
 *
 * Why recycle: at steady state every block-cache miss evicts a block. With
 * a fresh buffer per miss the evicted 4 KiB buffers sit in V8's old space
 * until a full GC, which both dominated the read profile (allocation and GC)
 * and held hundreds of MiB of dead buffers in RSS. A buffer is recycled only
 * when no cursor was ever given its block (`Block.lent`): cursors keep views
 * into their blocks while they move, point lookups copy the value out at once.
 *
 * Why second chance (CLOCK) rather than strict LRU: a hit only sets the
 * slot's `referenced` flag. Moving the slot to the front of the recency list
 * on every hit wrote to two neighbouring slots, each a likely CPU cache miss
 * in a cache of ~15,000 blocks (8 % of a fully cached read profile).
 * Eviction takes the oldest slot; a referenced one is cleared and requeued
 * as the newest instead, so a block read since it was queued survives a
 * round, as in CLOCK.
 *
 * Why no Map: each table keeps its own array of slots indexed by block
 * number (`BlockSlots`), so a lookup is one array load instead of hashing a
 * key into a Map of every cached block (and a key built from file number and
 * block number stops being a small integer once file numbers pass 255).
 */
import type { Block } from './block.ts';
import { LruOrder } from './lru-order.ts';

/** JS heap cost of one cached block beyond its buffer: Block and Buffer objects, LRU slot, backing-store record. */
export const cachedBlockOverheadBytes = 320;
/** Spare buffers kept for reuse; a miss evicts about one block, so a few suffice. */
const maxSpareBuffers = 16;
/** Buffers are allocated in multiples of this, so a spare fits most blocks of a table. */
const bufferGranuleBytes = 64;

interface Slot {
  block: Block;
  bytes: number;
  /** Read since it was queued: survives the next eviction round once. */
  referenced: boolean;
  owner: BlockSlots;
  index: number;
  newer: Slot | undefined;
  older: Slot | undefined;
}

/** One table's cached blocks by block number (the table owns it; the cache fills and empties it). */
export type BlockSlots = (Slot | undefined)[];

export function newBlockSlots(blocks: number): BlockSlots {
  return new Array<Slot | undefined>(blocks).fill(undefined);
}

export class BlockCache extends LruOrder<Slot> {
  private entries = 0;
  private readonly spare: Block[] = [];
  private spareSlot: Slot | undefined = undefined;

  get size(): number {
    return this.entries;
  }

  /** The bytes a block occupies in the cache. */
  static charge(block: Block): number {
    return block.buf.length + cachedBlockOverheadBytes;
  }

  get(owner: BlockSlots, index: number): Block | undefined {
    const slot = owner[index];
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    slot.referenced = true;
    return slot.block;
  }

  set(owner: BlockSlots, index: number, block: Block, bytes: number): void {
    if (bytes > this.capacity || index >= owner.length) return;
    const old = owner[index];
    if (old !== undefined) this.remove(old);
    // Reuse the slot of the last eviction: a steady-state cache evicts on every set.
    let slot = this.spareSlot;
    if (slot === undefined) {
      slot = { block, bytes, referenced: false, owner, index, newer: undefined, older: undefined };
    } else {
      this.spareSlot = undefined;
      slot.block = block;
      slot.bytes = bytes;
      slot.referenced = false;
      slot.owner = owner;
      slot.index = index;
    }
    owner[index] = slot;
    this.link(slot);
    this.entries++;
    this.evict();
  }

  private evict(): void {
    // Each slot is requeued at most once per call (its flag is cleared), so this ends.
    while (this.used > this.capacity && this.oldest !== undefined) {
      const oldest = this.oldest;
      if (oldest.referenced) {
        oldest.referenced = false;
        this.requeue(oldest);
      } else {
        this.remove(oldest);
      }
    }
  }

  private remove(slot: Slot): void {
    this.unlinkCharged(slot);
    slot.owner[slot.index] = undefined;
    this.entries--;
    this.giveBack(slot.block);
    this.spareSlot = slot;
  }

  /** An evicted block whose buffer holds at least `bytes` bytes, to read the next block into (see Block.reuse). */
  takeSpare(bytes: number): Block | undefined {
    const spare = this.spare;
    for (let i = spare.length - 1; i >= 0; i--) {
      const block = spare[i] as Block;
      const size = block.buf.length;
      // A much bigger buffer would waste its extra bytes for the block's whole cache lifetime.
      if (size >= bytes && size <= 2 * bytes + bufferGranuleBytes) {
        spare[i] = spare[spare.length - 1] as Block;
        spare.pop();
        return block;
      }
    }
    return undefined;
  }

  /** A new buffer for a block of `bytes` bytes, rounded up so that it can be reused for most blocks. */
  static newBuffer(bytes: number): Buffer {
    return Buffer.allocUnsafeSlow(Math.ceil(bytes / bufferGranuleBytes) * bufferGranuleBytes);
  }

  /** Hands back a block that nothing references any more. */
  giveBack(block: Block): void {
    if (!block.lent && this.spare.length < maxSpareBuffers) this.spare.push(block);
  }

  /** Drops the blocks of one table's slots (a table that will never be read). */
  removeAll(owner: BlockSlots): void {
    for (const slot of owner) if (slot !== undefined) this.remove(slot);
  }

  /** Drops every block (tables keep their slot arrays, now empty). */
  clear(): void {
    for (let slot = this.newest; slot !== undefined; slot = slot.older) slot.owner[slot.index] = undefined;
    this.resetOrder();
    this.entries = 0;
    this.spare.length = 0;
    this.spareSlot = undefined;
  }
}
