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
 */
import type { Block } from './block.ts';
import { LruCache } from './cache.ts';

/** JS heap cost of one cached block beyond its buffer: Block and Buffer objects, LRU slot, Map entry, backing-store record. */
export const cachedBlockOverheadBytes = 320;
/** Spare buffers kept for reuse; a miss evicts about one block, so a few suffice. */
const maxSpareBuffers = 16;
/** Buffers are allocated in multiples of this, so a spare fits most blocks of a table. */
const bufferGranuleBytes = 64;

export class BlockCache extends LruCache<number, Block> {
  private readonly spare: Block[] = [];

  /** The bytes a block occupies in the cache. */
  static charge(block: Block): number {
    return block.buf.length + cachedBlockOverheadBytes;
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

  protected override removed(block: Block): void {
    this.giveBack(block);
  }

  override clear(): void {
    super.clear();
    this.spare.length = 0;
  }
}
