/**
 * Cursors over the engine's sorted sources (memtables, SSTables, levels) and
 * the merge that combines them, newest source first. Used by scans and by
 * compaction. A cursor runs in one direction, fixed when it is created.
 */
import type { Block } from './block.ts';
import { keyPrefix32, kindDelete, kindPut, kindPutMeta } from './block.ts';
import type { MemVersion, Memtable } from './memtable.ts';
import type { Table } from './sstable.ts';
import { compareBytes } from './codec.ts';

/** Keys up to this long are copied into a cursor's own buffers; longer ones are views into the block. */
const maxCopiedKeyBytes = 128;

export interface Cursor {
  /**
   * Current key, undefined once exhausted: valid while the cursor moves at
   * most once more (a view, or one of the cursor's own buffers); copy before keeping.
   */
  key: Buffer | undefined;
  next(): void;
  kind(): number;
  value(): Uint8Array | undefined;
  meta(): Uint8Array | undefined;
}

/** Forward: the first key ≥ `from`; reverse: the last key ≤ `from`. */
export class MemCursor implements Cursor {
  key: Buffer | undefined = undefined;
  private readonly ids: Int32Array;
  private index: number;
  /** The current entry's id, or -1 when the visible version is an older one (`version`). */
  private id = -1;
  private version: MemVersion | undefined = undefined;

  constructor(
    private readonly mem: Memtable,
    private readonly seq: number,
    private readonly reverse: boolean,
    from: Buffer | undefined,
  ) {
    const ids = mem.sortedIds();
    this.ids = ids;
    if (!reverse) {
      this.index = (from === undefined ? 0 : mem.lowerBound(ids, from)) - 1;
    } else if (from === undefined) {
      this.index = ids.length;
    } else {
      const i = mem.lowerBound(ids, from);
      const exact = i < ids.length && mem.compareKey(from, ids[i] as number) === 0;
      this.index = exact ? i + 1 : i;
    }
    this.next();
  }

  next(): void {
    const step = this.reverse ? -1 : 1;
    const mem = this.mem;
    for (;;) {
      this.index += step;
      if (this.index < 0 || this.index >= this.ids.length) {
        this.key = undefined;
        return;
      }
      const id = this.ids[this.index] as number;
      if (mem.seqOf(id) <= this.seq) {
        this.id = id;
        this.version = undefined;
        this.key = mem.key(id);
        return;
      }
      let version = mem.olderOf(id);
      while (version !== undefined && version.seq > this.seq) version = version.older;
      if (version !== undefined) {
        this.id = -1;
        this.version = version;
        this.key = mem.key(id);
        return;
      }
    }
  }

  kind(): number {
    if (this.id >= 0) return this.mem.isDeletion(this.id) ? kindDelete : this.mem.meta(this.id) === undefined ? kindPut : kindPutMeta;
    const v = this.version as MemVersion;
    return v.value === undefined ? kindDelete : v.meta === undefined ? kindPut : kindPutMeta;
  }

  value(): Uint8Array | undefined {
    return this.id >= 0 ? this.mem.value(this.id) : this.version?.value;
  }

  meta(): Uint8Array | undefined {
    return this.id >= 0 ? this.mem.meta(this.id) : this.version?.meta;
  }
}

/** Forward: the first key ≥ `from`; reverse: the last key ≤ `from`. */
export class TableCursor implements Cursor {
  key: Buffer | undefined = undefined;
  private blockIndex: number;
  private block: Block | undefined;
  private i = 0;
  /**
   * Buffers of this cursor's own last two blocks (read from disk or copied
   * from the cache), reused for the next reads: a scan or compaction would
   * otherwise allocate one buffer per block. Two, because the merge keeps
   * the previous key (a view into the previous block) while cursors move.
   */
  private readonly own: (Buffer | undefined)[] = [undefined, undefined];
  private ownNext = 0;

  constructor(
    private readonly table: Table,
    private readonly reverse: boolean,
    from: Buffer | undefined,
    private readonly fillCache: boolean,
  ) {
    const blocks = table.blockCount;
    if (!reverse) {
      this.blockIndex = from === undefined ? 0 : table.index.lowerBound(from);
      if (this.blockIndex >= blocks) return;
      this.block = this.load(this.blockIndex, true);
      this.i = from === undefined ? 0 : this.block.lowerBound(from);
      this.settle();
    } else {
      this.blockIndex = from === undefined ? blocks - 1 : Math.min(table.index.lowerBound(from), blocks - 1);
      if (this.blockIndex < 0) return;
      this.block = this.load(this.blockIndex, true);
      this.i = from === undefined ? this.block.count - 1 : this.block.upperBoundBefore(from);
      this.settle();
    }
  }

  /** `reuse`: whether an own buffer may be overwritten (only by the first load of a move). */
  private load(i: number, reuse: boolean): Block {
    if (this.fillCache) return this.table.block(i, true);
    const slot = this.ownNext;
    const block = this.table.cursorBlock(i, reuse ? this.own[slot] : undefined);
    this.own[slot] = block.buf;
    this.ownNext = slot ^ 1;
    return block;
  }

  /**
   * Key buffers of this cursor, one per key length and parity: the current
   * key is copied into one instead of viewed (a view per entry was ~90 bytes
   * of garbage per entry compacted). Two parities, because the merge keeps
   * the previous key while this cursor moves once more.
   */
  private readonly keyBuffers: (Buffer | undefined)[][] = [[], []];
  private keyParity = 0;

  private keyOf(block: Block): Buffer {
    const start = block.keyStart;
    const length = block.keyEnd - start;
    if (length > maxCopiedKeyBytes) return block.keyView();
    this.keyParity ^= 1;
    const buffers = this.keyBuffers[this.keyParity] as (Buffer | undefined)[];
    let out = buffers[length];
    if (out === undefined) {
      out = Buffer.allocUnsafeSlow(length);
      buffers[length] = out;
    }
    const src = block.buf;
    for (let i = 0; i < length; i++) out[i] = src[start + i] as number;
    return out;
  }

  /** Moves across block boundaries until positioned on an entry or exhausted. */
  private settle(): void {
    let loads = 0;
    for (;;) {
      const block = this.block;
      if (block === undefined) {
        this.key = undefined;
        return;
      }
      if (this.i >= 0 && this.i < block.count) {
        block.decodeKey(this.i);
        this.key = this.keyOf(block);
        return;
      }
      this.blockIndex += this.reverse ? -1 : 1;
      if (this.blockIndex < 0 || this.blockIndex >= this.table.blockCount) {
        this.block = undefined;
        continue;
      }
      // Past one empty block (never written, but a file may hold one) the previous key's buffer must survive.
      this.block = this.load(this.blockIndex, loads++ === 0);
      this.i = this.reverse ? this.block.count - 1 : 0;
    }
  }

  next(): void {
    this.i += this.reverse ? -1 : 1;
    this.settle();
  }

  // The entry under the cursor, decoded once per position (blocks are shared, so copy the fields out).
  private decodedBlock: Block | undefined = undefined;
  private decodedIndex = -1;
  private entryKind = 0;
  private entryValue: Uint8Array | undefined = undefined;
  private entryMeta: Uint8Array | undefined = undefined;

  private decodeCurrent(): void {
    const block = this.block as Block;
    if (this.decodedBlock === block && this.decodedIndex === this.i) return;
    block.decode(this.i);
    this.decodedBlock = block;
    this.decodedIndex = this.i;
    this.entryKind = block.kind;
    this.entryValue = block.kind === kindDelete ? undefined : block.buf.subarray(block.valueStart, block.valueEnd);
    this.entryMeta = block.kind === kindPutMeta ? block.buf.subarray(block.metaStart, block.metaEnd) : undefined;
  }

  kind(): number {
    this.decodeCurrent();
    return this.entryKind;
  }

  value(): Uint8Array | undefined {
    this.decodeCurrent();
    return this.entryValue;
  }

  meta(): Uint8Array | undefined {
    this.decodeCurrent();
    return this.entryMeta;
  }
}

/** A sorted run of non-overlapping tables (one level ≥ 1). */
export class LevelCursor implements Cursor {
  key: Buffer | undefined = undefined;
  private current: TableCursor | undefined;
  private t: number;

  constructor(
    private readonly tables: readonly Table[],
    private readonly reverse: boolean,
    from: Buffer | undefined,
    private readonly fillCache: boolean,
  ) {
    if (!reverse) {
      this.t = from === undefined ? 0 : firstTableEndingAtOrAfter(tables, from);
    } else if (from === undefined) {
      this.t = tables.length - 1;
    } else {
      // The last table whose smallest key is ≤ from.
      let t = firstTableEndingAtOrAfter(tables, from);
      if (t >= tables.length || (tables[t] as Table).meta.smallest.compare(from) > 0) t--;
      this.t = t;
    }
    this.open(from);
  }

  private open(from: Buffer | undefined): void {
    for (;;) {
      if (this.t < 0 || this.t >= this.tables.length) {
        this.current = undefined;
        this.key = undefined;
        return;
      }
      this.current = new TableCursor(this.tables[this.t] as Table, this.reverse, from, this.fillCache);
      if (this.current.key !== undefined) {
        this.key = this.current.key;
        return;
      }
      from = undefined;
      this.t += this.reverse ? -1 : 1;
    }
  }

  next(): void {
    const current = this.current;
    if (current === undefined) return;
    current.next();
    if (current.key !== undefined) {
      this.key = current.key;
      return;
    }
    this.t += this.reverse ? -1 : 1;
    this.open(undefined);
  }

  kind(): number {
    return (this.current as TableCursor).kind();
  }

  value(): Uint8Array | undefined {
    return (this.current as TableCursor).value();
  }

  meta(): Uint8Array | undefined {
    return (this.current as TableCursor).meta();
  }
}

/** Index of the first table whose largest key is ≥ key (tables sorted and disjoint). */
export function firstTableEndingAtOrAfter(tables: readonly Table[], key: Buffer): number {
  const p = keyPrefix32(key, 0, key.length);
  let lo = 0;
  let hi = tables.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const table = tables[mid] as Table;
    // Zero-padded prefixes preserve order: only equal ones need the bytes.
    const q = table.largestPrefix;
    const cmp = q !== p ? q - p : compareBytes(table.meta.largest, key, 0, key.length);
    if (cmp < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Merges cursors given newest first: for equal keys the newest wins and the
 * older ones are skipped. Positioned on the winner after `advance()`. Each
 * cursor's 4-byte key prefix is kept as an integer, so most comparisons
 * between cursors never reach a byte compare.
 */
export class MergeCursor {
  key: Buffer | undefined = undefined;
  winner: Cursor | undefined = undefined;
  private readonly prefixes: number[];
  private winnerPrefix = 0;

  constructor(
    private readonly cursors: Cursor[],
    private readonly reverse: boolean,
  ) {
    this.prefixes = cursors.map((c) => prefixOf(c.key));
    this.pick();
  }

  private pick(): void {
    let best: Cursor | undefined;
    let bestKey: Buffer | undefined;
    let bestPrefix = 0;
    const reverse = this.reverse;
    for (let i = 0; i < this.cursors.length; i++) {
      const c = this.cursors[i] as Cursor;
      const k = c.key;
      if (k === undefined) continue;
      const p = this.prefixes[i] as number;
      if (bestKey === undefined) {
        best = c;
        bestKey = k;
        bestPrefix = p;
        continue;
      }
      const cmp = p !== bestPrefix ? p - bestPrefix : k.compare(bestKey);
      if (reverse ? cmp > 0 : cmp < 0) {
        best = c;
        bestKey = k;
        bestPrefix = p;
      }
    }
    this.winner = best;
    this.key = bestKey;
    this.winnerPrefix = bestPrefix;
  }

  /** Skips every cursor positioned on the current key, then picks the next winner. */
  advance(): void {
    const key = this.key;
    if (key === undefined) return;
    // `key` stays valid while each cursor moves once (see Cursor.key).
    for (let i = 0; i < this.cursors.length; i++) {
      const c = this.cursors[i] as Cursor;
      if (c.key !== undefined && this.prefixes[i] === this.winnerPrefix && c.key.equals(key)) {
        c.next();
        this.prefixes[i] = prefixOf(c.key);
      }
    }
    this.pick();
  }
}

function prefixOf(key: Buffer | undefined): number {
  return key === undefined ? 0 : keyPrefix32(key, 0, key.length);
}
