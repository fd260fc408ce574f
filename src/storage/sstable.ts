/**
 * SSTables: immutable sorted files (byte-level format in docs/formats/sstable.md).
 *
 *   data block* | filter block | index block | footer (48 bytes)
 *
 * Every block carries a codec byte and a CRC-32 of its stored bytes, checked
 * on every read from disk: a corrupted block surfaces as CorruptionError and
 * is never returned as data.
 */
import { compressSync, uncompressSync } from 'lz4-napi';
import { CorruptionError, crc32 } from '../core/index.ts';
import type { AppendFile, FileSystem, ReadFile } from '../core/index.ts';
import { Block, BlockBuilder, keyPrefix32, kindDelete } from './block.ts';
import { BloomFilter, addToBlockedBloom, bloomHash, bloomHashRange, buildBloom, newBlockedBloom } from './bloom.ts';
import { BlockCache, newBlockSlots } from './block-cache.ts';
import type { BlockSlots } from './block-cache.ts';
import { ByteWriter, compareBytes, readU32, writeU32, writeU64 } from './codec.ts';

/** docs/formats/sstable.md: "RKVT" little-endian. */
export const sstableMagic = 0x54564b52;
/**
 * 3: the filter block is a blocked Bloom filter (bloom.ts). 2: data blocks
 * may carry a hash index (flag in the block's count word). Versions 1 and 2
 * are still read (their filters with the classic layout).
 */
export const sstableFormatVersion = 3;
/** The first version whose filter block is blocked. */
const blockedFilterFormatVersion = 3;
const oldestReadableFormatVersion = 1;
export const sstableFooterBytes = 48;
const blockTrailerBytes = 5;
export const codecNone = 0;
export const codecLz4 = 1;
/** Keys added to a table's filter between two pause checks of finish() (~0.2 ms of CPU). */
const filterKeysPerStep = 8192;
/** A compressed block is kept only when it saves at least 1/8 (as LevelDB does). */
const minCompressionSavingRatio = 1 / 8;
/**
 * After this many blocks in a row that did not compress, only one block in
 * `compressionProbeInterval` is tried until one compresses again: with
 * incompressible values every attempt cost CPU and a 4 KiB output buffer
 * of garbage, which showed in peak RSS during compaction.
 */
const incompressibleStreakBlocks = 8;
const compressionProbeInterval = 16;
/** Table output is buffered and appended in chunks of this size. */
const outputChunkBytes = 256 * 1024;

export interface TableMeta {
  number: number;
  size: number;
  smallest: Buffer;
  largest: Buffer;
  entries: number;
  tombstones: number;
}

export function tableFileName(number: number): string {
  return `${String(number).padStart(6, '0')}.sst`;
}

export interface TableBuildOptions {
  blockBytes: number;
  bloomBitsPerKey: number;
  compression: 'lz4' | 'none';
  /**
   * fdatasync the file every this many bytes while it is written (RocksDB's
   * bytes_per_sync); 0 or absent: only once, when finished.
   */
  tableBytesPerSync?: number;
  /** The format to write: the current one unless given (2: a table as the previous build wrote it, for compatibility tests). */
  formatVersion?: 2 | 3;
}

/**
 * The bloom-hash arrays of finished table builders, kept for the next one: a
 * flush or compaction writes table after table, and arrays grown per table
 * (MiBs at the default file size) were external-memory garbage that lived
 * until a full GC. One pool per engine; builders take and give back arrays
 * synchronously, so concurrent builders never share one.
 */
export class HashArrayPool {
  private readonly spare: Uint32Array[] = [];

  take(): Uint32Array {
    return this.spare.pop() ?? new Uint32Array(initialHashEntries);
  }

  giveBack(array: Uint32Array): void {
    if (this.spare.length < maxSpareHashArrays && array.length <= maxPooledHashEntries) this.spare.push(array);
  }
}
const initialHashEntries = 1024;
/** A flush and a compaction each hold two arrays at once. */
const maxSpareHashArrays = 4;
/** Arrays bigger than this (tables of over a million entries) are not kept. */
const maxPooledHashEntries = 1 << 20;

export class TableBuilder {
  private readonly block: BlockBuilder;
  private readonly index = new BlockBuilder(4096);
  /** Output not yet appended; reused after each append (the caller awaits drain before adding more). */
  private readonly out = new ByteWriter(outputChunkBytes + 8192);
  private readonly handle = Buffer.alloc(12);
  private offset = 0;
  /** Bytes covered by the last periodic sync (tableBytesPerSync). */
  private syncedBytes = 0;
  private h1s: Uint32Array;
  private h2s: Uint32Array;
  private readonly hash = new Uint32Array(2);
  private smallest: Buffer | undefined;
  private last: Buffer | undefined;
  entries = 0;
  tombstones = 0;
  private incompressibleStreak = 0;
  private skippedCompressions = 0;
  /**
   * The table's block-cache slots, filled as its data blocks are built when
   * the builder prepopulates `warmCache` (Table.open adopts them); see
   * LsmOptions.prepopulateBlockCacheOnFlush.
   */
  readonly cacheSlots: BlockSlots = [];

  private constructor(
    private readonly file: AppendFile,
    readonly number: number,
    private readonly options: TableBuildOptions,
    private readonly hashArrays: HashArrayPool,
    private readonly warmCache: BlockCache | undefined,
  ) {
    this.block = new BlockBuilder(options.blockBytes + 1024, true);
    this.h1s = hashArrays.take();
    this.h2s = hashArrays.take();
  }

  /** `warmCache`: put each data block, decoded, into this cache as it is written (a flush's output). */
  static async create(
    fs: FileSystem,
    path: string,
    number: number,
    options: TableBuildOptions,
    hashArrays = new HashArrayPool(),
    warmCache?: BlockCache,
  ): Promise<TableBuilder> {
    return new TableBuilder(await fs.openAppend(path, { truncate: true }), number, options, hashArrays, warmCache);
  }

  /** The blocks this builder put into the cache (an abandoned table's blocks would only wait for eviction). */
  private dropCachedBlocks(): void {
    this.warmCache?.removeAll(this.cacheSlots);
  }

  /** The builder is done (finished or abandoned): its hash arrays go back to the pool. */
  private releaseHashes(): void {
    this.hashArrays.giveBack(this.h1s);
    this.hashArrays.giveBack(this.h2s);
    this.h1s = this.h2s = emptyHashes;
  }

  get path(): string {
    return this.file.path;
  }

  /** Bytes written or buffered so far (to cut compaction output at the target size). */
  get estimatedBytes(): number {
    return this.offset + this.block.estimatedBytes;
  }

  /** add() for an entry given as ranges (BlockBuilder.addRange): a flush makes no view per entry. */
  addRange(keySrc: Uint8Array, keyStart: number, keyEnd: number, kind: number, valueSrc: Uint8Array, valueStart: number, valueEnd: number, metaEnd: number): void {
    this.reserveHash();
    bloomHashRange(keySrc, keyStart, keyEnd, this.hash);
    this.h1s[this.entries] = this.hash[0] as number;
    this.h2s[this.entries] = this.hash[1] as number;
    if (this.smallest === undefined) this.smallest = Buffer.from(Uint8Array.prototype.subarray.call(keySrc, keyStart, keyEnd));
    this.block.addRange(keySrc, keyStart, keyEnd, kind, valueSrc, valueStart, valueEnd, metaEnd, this.hash[0] as number);
    this.entries++;
    if (kind === kindDelete) this.tombstones++;
    if (this.block.estimatedBytes >= this.options.blockBytes) this.finishBlock();
  }

  private reserveHash(): void {
    if (this.entries === this.h1s.length) {
      const h1s = new Uint32Array(Math.max(initialHashEntries, this.entries * 2));
      h1s.set(this.h1s);
      this.hashArrays.giveBack(this.h1s);
      this.h1s = h1s;
      const h2s = new Uint32Array(h1s.length);
      h2s.set(this.h2s);
      this.hashArrays.giveBack(this.h2s);
      this.h2s = h2s;
    }
  }

  /** Keys must arrive in strictly ascending order. */
  add(key: Uint8Array, kind: number, value: Uint8Array | undefined, meta: Uint8Array | undefined): void {
    this.reserveHash();
    bloomHash(key, this.hash);
    this.h1s[this.entries] = this.hash[0] as number;
    this.h2s[this.entries] = this.hash[1] as number;
    if (this.smallest === undefined) this.smallest = Buffer.from(key);
    this.block.add(key, kind, value, meta, this.hash[0]);
    this.entries++;
    if (kind === kindDelete) this.tombstones++;
    if (this.block.estimatedBytes >= this.options.blockBytes) this.finishBlock();
  }

  /** Appends buffered output once enough has piled up (and syncs every tableBytesPerSync); call between adds. */
  async drain(): Promise<void> {
    if (this.out.length < outputChunkBytes) return;
    await this.writePending();
    const every = this.options.tableBytesPerSync ?? 0;
    if (every > 0 && this.offset - this.syncedBytes >= every) {
      this.syncedBytes = this.offset;
      await this.file.sync();
    }
  }

  private async writePending(): Promise<void> {
    if (this.out.length === 0) return;
    await this.file.append(this.out.view());
    this.out.reset();
  }

  private emit(data: Uint8Array): void {
    this.out.bytes(data);
    this.offset += data.length;
  }

  /** Writes a block with its trailer; returns [offset, stored length]. */
  private writeBlock(raw: Uint8Array, allowCompression: boolean): [number, number] {
    let stored = raw;
    let codec = codecNone;
    if (allowCompression && this.options.compression === 'lz4' && (this.incompressibleStreak < incompressibleStreakBlocks || ++this.skippedCompressions % compressionProbeInterval === 0)) {
      const compressed = compressSync(raw as Buffer);
      if (compressed.length <= raw.length * (1 - minCompressionSavingRatio)) {
        stored = compressed;
        codec = codecLz4;
        this.incompressibleStreak = 0;
      } else {
        this.incompressibleStreak++;
      }
    }
    const at = this.offset;
    const out = this.out;
    const start = out.length;
    out.bytes(stored);
    out.u8(codec);
    // The checksum covers the block and its codec byte (docs/formats/sstable.md).
    out.u32(crc32(out.buf.subarray(start, out.length)));
    this.offset += stored.length + blockTrailerBytes;
    return [at, stored.length];
  }

  private finishBlock(): void {
    if (this.block.count === 0) return;
    // The index copies the key and handle bytes, so views and a reused handle suffice.
    const lastKey = this.block.lastKeyView();
    const raw = this.block.finishView();
    const [offset, length] = this.writeBlock(raw, true);
    if (this.warmCache !== undefined) this.cacheBlock(raw, offset);
    const handle = this.handle;
    writeU64(handle, 0, offset);
    writeU32(handle, 8, length);
    this.index.add(lastKey, 1, handle, undefined);
  }

  /**
   * The block just written, decoded (what a read of it would cache), into
   * the cache as block number `cacheSlots.length`: the reads that follow a
   * flush (keys that left the memtable) then skip the pread, checksum and
   * lz4 decode of a cold table (RocksDB's prepopulate_block_cache =
   * kFlushOnly). Bounded by the cache's budget like any other block.
   */
  private cacheBlock(raw: Uint8Array, offset: number): void {
    const cache = this.warmCache as BlockCache;
    const slots = this.cacheSlots;
    const index = slots.length;
    slots.push(undefined);
    const length = raw.length;
    const spare = cache.takeSpare(length);
    const buf = spare?.buf ?? BlockCache.newBuffer(length);
    buf.set(raw);
    let block: Block;
    if (spare !== undefined) {
      spare.reuse(buf, this.file.path, offset, length);
      block = spare;
    } else {
      block = new Block(buf, this.file.path, offset, length);
    }
    cache.set(slots, index, block, BlockCache.charge(block));
  }

  /**
   * Completes the file (filter, index, footer), makes it durable and closes
   * it. `pause` is called between steps of the filter build (it returns a
   * promise to yield to the event loop, or undefined to go on).
   */
  async finish(pause?: () => Promise<void> | undefined): Promise<TableMeta> {
    this.finishBlock();
    if (this.index.count > 0) this.last = this.index.lastKey();
    const version = this.options.formatVersion ?? sstableFormatVersion;
    let filter: Uint8Array;
    if (version >= blockedFilterFormatVersion) {
      filter = newBlockedBloom(this.entries, this.options.bloomBitsPerKey);
      for (let from = 0; from < this.entries; from += filterKeysPerStep) {
        addToBlockedBloom(filter, this.h1s, this.h2s, from, Math.min(this.entries, from + filterKeysPerStep));
        const paused = pause?.();
        if (paused !== undefined) await paused;
      }
    } else {
      filter = buildBloom(this.h1s, this.h2s, this.entries, this.options.bloomBitsPerKey);
    }
    this.releaseHashes();
    const [filterOffset, filterLength] = this.writeBlock(filter, false);
    const [indexOffset, indexLength] = this.writeBlock(this.index.finish(), false);
    const footer = Buffer.alloc(sstableFooterBytes);
    writeU64(footer, 0, indexOffset);
    writeU32(footer, 8, indexLength);
    writeU64(footer, 12, filterOffset);
    writeU32(footer, 20, filterLength);
    writeU64(footer, 24, this.entries);
    writeU32(footer, 32, this.tombstones);
    footer[36] = version;
    writeU32(footer, 40, crc32(footer.subarray(0, 40)));
    writeU32(footer, 44, sstableMagic);
    this.emit(footer);
    await this.writePending();
    await this.file.sync();
    await this.file.close();
    return {
      number: this.number,
      size: this.offset,
      smallest: this.smallest ?? Buffer.alloc(0),
      largest: this.last ?? Buffer.alloc(0),
      entries: this.entries,
      tombstones: this.tombstones,
    };
  }

  async abandon(): Promise<void> {
    this.releaseHashes();
    this.dropCachedBlocks();
    await this.file.close().catch(() => undefined);
  }
}

function corrupt(path: string, offset: number, what: string): CorruptionError {
  return new CorruptionError(`Corrupt SSTable ${path} at offset ${offset}: ${what}`, { file: path, offset });
}

/** Verifies the checksum of a stored block (`raw` holds the block and its trailer); returns its codec. */
function checkStoredBlock(path: string, offset: number, length: number, raw: Uint8Array, got: number): number {
  if (got !== length + blockTrailerBytes) throw corrupt(path, offset, `block of ${length} bytes runs past the end of the file`);
  const codec = raw[length] as number;
  const expected = readU32(raw, length + 1);
  // One pass over block and codec byte: crc32(codec, crc32(block)) is the CRC of their concatenation.
  const actual = crc32(raw.subarray(0, length + 1));
  if (actual !== expected) throw corrupt(path, offset, `block checksum mismatch (stored ${expected}, computed ${actual})`);
  if (codec !== codecNone && codec !== codecLz4) throw corrupt(path, offset, `unknown block codec ${codec} (written by a newer ringkv?)`);
  return codec;
}

function decompress(path: string, offset: number, stored: Uint8Array): Buffer {
  try {
    return uncompressSync(stored as Buffer);
  } catch (cause) {
    throw new CorruptionError(`Corrupt SSTable ${path} at offset ${offset}: lz4 block does not decompress`, { file: path, offset, cause });
  }
}

/** Reads one stored block, verifies its checksum and decompresses it (into fresh memory: filter and index blocks). */
function readBlockBytes(file: ReadFile, offset: number, length: number): Buffer {
  const raw = file.readSync(offset, length + blockTrailerBytes);
  const codec = checkStoredBlock(file.path, offset, length, raw, raw.length);
  const stored = Buffer.from(raw.buffer, raw.byteOffset, length);
  return codec === codecNone ? stored : decompress(file.path, offset, stored);
}

/**
 * `bytes` itself when it fills (nearly) all of its memory, else a copy: a
 * small read is a slice of Node's shared pool, and a long-lived slice would
 * pin the whole pool chunk. (Copying big filters and indexes too only made
 * garbage: two copies per table opened.)
 */
function ownBytes(bytes: Buffer): Buffer {
  if (bytes.buffer.byteLength <= bytes.length + blockTrailerBytes) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

const emptyHashes = new Uint32Array(0);

export class Table {
  readonly filter: BloomFilter;
  readonly index: Block;
  /** Holders: the current version and open iterators. The file is deleted when this reaches 0 while obsolete. */
  refs = 0;
  obsolete = false;
  /** This table's cached blocks, by block number (filled and emptied by the block cache). */
  private readonly cacheSlots: BlockSlots;
  /** First 4 bytes of the smallest and largest keys (block.ts keyPrefix32): most key-range tests end on them. */
  readonly smallestPrefix: number;
  readonly largestPrefix: number;

  private constructor(
    readonly meta: TableMeta,
    private readonly file: ReadFile,
    filter: BloomFilter,
    index: Block,
    private readonly cache: BlockCache,
    warmSlots: BlockSlots | undefined,
  ) {
    this.filter = filter;
    this.index = index;
    if (warmSlots !== undefined && warmSlots.length === index.count) {
      this.cacheSlots = warmSlots;
    } else {
      if (warmSlots !== undefined) cache.removeAll(warmSlots);
      this.cacheSlots = newBlockSlots(index.count);
    }
    this.smallestPrefix = keyPrefix32(meta.smallest, 0, meta.smallest.length);
    this.largestPrefix = keyPrefix32(meta.largest, 0, meta.largest.length);
  }

  /** Whether `key` (with prefix `p`, keyPrefix32) sorts before this table's smallest key. */
  startsAfter(key: Buffer, p: number): boolean {
    const q = this.smallestPrefix;
    return q !== p ? q > p : compareBytes(this.meta.smallest, key, 0, key.length) > 0;
  }

  get path(): string {
    return this.file.path;
  }

  /** `warmSlots`: the block-cache slots its builder filled (TableBuilder.cacheSlots), adopted as this table's. */
  static async open(fs: FileSystem, path: string, meta: TableMeta, cache: BlockCache, warmSlots?: BlockSlots): Promise<Table> {
    const file = await fs.openRead(path);
    try {
      if (file.size < sstableFooterBytes) throw corrupt(path, 0, `file of ${file.size} bytes is shorter than the footer`);
      const footerAt = file.size - sstableFooterBytes;
      const footer = file.readSync(footerAt, sstableFooterBytes);
      if (readU32(footer, 44) !== sstableMagic) throw corrupt(path, footerAt + 44, 'bad magic (not a ringkv SSTable)');
      if (readU32(footer, 40) !== crc32(footer.subarray(0, 40))) throw corrupt(path, footerAt, 'footer checksum mismatch');
      const version = footer[36] as number;
      if (version < oldestReadableFormatVersion || version > sstableFormatVersion) {
        throw corrupt(path, footerAt + 36, `format version ${version} is not supported (this build reads ${oldestReadableFormatVersion} to ${sstableFormatVersion})`);
      }
      const u64 = (at: number): number => readU32(footer, at) + readU32(footer, at + 4) * 0x100000000;
      const indexOffset = u64(0);
      const indexLength = readU32(footer, 8);
      const filterOffset = u64(12);
      const filterLength = readU32(footer, 20);
      const filter = new BloomFilter(ownBytes(readBlockBytes(file, filterOffset, filterLength)), version >= blockedFilterFormatVersion);
      const index = new Block(ownBytes(readBlockBytes(file, indexOffset, indexLength)), path, indexOffset);
      return new Table(meta, file, filter, index, cache, warmSlots);
    } catch (error) {
      if (warmSlots !== undefined) cache.removeAll(warmSlots);
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  get blockCount(): number {
    return this.index.count;
  }

  /**
   * Block i, from the cache or disk (checksum verified), for a cursor: the
   * block is marked lent, so its buffer is never recycled under the cursor.
   */
  block(i: number, fillCache = true): Block {
    const block = this.cachedBlock(i, fillCache);
    block.lent = true;
    return block;
  }

  /**
   * Block i for a cursor that does not fill the cache, in a buffer the
   * cursor owns: `scratch` (one of its own earlier blocks' buffers it no
   * longer uses) when big enough, else a new one. A cached block is copied
   * rather than lent: a lent block's buffer can never be recycled, and a
   * compaction or scan used to lend every cached block of the tables it
   * read, so each one's evictions became garbage (40–60 MiB at 2M keys).
   */
  cursorBlock(i: number, scratch: Buffer | undefined): Block {
    this.blockHandle(i);
    const offset = this.handleOffset;
    const length = this.handleLength;
    const cached = this.cache.get(this.cacheSlots, i);
    if (cached !== undefined) {
      const bytes = cached.byteLength;
      const copy = scratch !== undefined && scratch.length >= bytes ? scratch : BlockCache.newBuffer(bytes);
      cached.buf.copy(copy, 0, 0, bytes);
      const block = new Block(copy, this.file.path, offset, bytes);
      block.lent = true;
      return block;
    }
    const stored = length + blockTrailerBytes;
    const buf = scratch !== undefined && scratch.length >= stored ? scratch : BlockCache.newBuffer(stored);
    const codec = checkStoredBlock(this.file.path, offset, length, buf, this.file.readSyncInto(offset, stored, buf));
    const block = codec === codecNone ? new Block(buf, this.file.path, offset, length) : new Block(decompress(this.file.path, offset, buf.subarray(0, length)), this.file.path, offset);
    block.lent = true;
    return block;
  }

  // Block i's handle, left in these fields (no array per block read).
  private handleOffset = 0;
  private handleLength = 0;

  private blockHandle(i: number): void {
    const index = this.index;
    index.decode(i);
    this.handleOffset = readU32(index.buf, index.valueStart) + readU32(index.buf, index.valueStart + 4) * 0x100000000;
    this.handleLength = readU32(index.buf, index.valueStart + 8);
  }

  private cachedBlock(i: number, fillCache: boolean): Block {
    const cached = this.cache.get(this.cacheSlots, i);
    if (cached !== undefined) return cached;
    const block = this.readBlock(i);
    if (fillCache) this.cache.set(this.cacheSlots, i, block, BlockCache.charge(block));
    return block;
  }

  /** Reads block i into a (recycled) buffer of the block cache and verifies it. */
  private readBlock(i: number): Block {
    this.blockHandle(i);
    const offset = this.handleOffset;
    const length = this.handleLength;
    const stored = length + blockTrailerBytes;
    const spare = this.cache.takeSpare(stored);
    const buf = spare?.buf ?? BlockCache.newBuffer(stored);
    let codec: number;
    try {
      codec = checkStoredBlock(this.file.path, offset, length, buf, this.file.readSyncInto(offset, stored, buf));
    } catch (error) {
      if (spare !== undefined) this.cache.giveBack(spare);
      throw error;
    }
    if (codec === codecNone) {
      if (spare === undefined) return new Block(buf, this.file.path, offset, length);
      spare.reuse(buf, this.file.path, offset, length);
      return spare;
    }
    const raw = decompress(this.file.path, offset, buf.subarray(0, length));
    if (spare !== undefined) this.cache.giveBack(spare);
    return new Block(raw, this.file.path, offset);
  }

  /**
   * Looks `key` up; on a hit returns the block with the entry decoded into
   * its position fields (read them before the next call), else undefined.
   */
  get(key: Buffer, h1: number, h2: number): Block | undefined {
    if (!this.filter.mayContain(h1, h2)) return undefined;
    const blockIndex = this.index.lowerBound(key);
    if (blockIndex >= this.index.count) return undefined;
    const block = this.cachedBlock(blockIndex, true);
    const i = block.find(key, h1);
    if (i < 0) return undefined;
    block.decode(i);
    return block;
  }

  /**
   * Its cached blocks stay until evicted, unreferenced, so first: dropping
   * them at once made garbage of all but 16 of their buffers, which the
   * next flush or read then allocated again (bench:engine fill-batch1 at
   * 1M keys −10 % and peak RSS +10 MiB; bench/RESULTS.md, session 7).
   */
  async close(): Promise<void> {
    await this.file.close();
  }
}

/** Convenience for tests and tools: the bloom hashes of one key. */
export function hashKey(key: Uint8Array): [number, number] {
  const out = new Uint32Array(2);
  bloomHash(key, out);
  return [out[0] as number, out[1] as number];
}
