/**
 * SSTable blocks (docs/formats/sstable.md, "block"): entries in key order,
 * then a u32 offset per entry and a u32 count, so a lookup is a binary search
 * straight over the block's bytes and a scan can run in either direction.
 */
import { CorruptionError } from '../core/index.ts';
import { ByteWriter, compareBytes, readU32 } from './codec.ts';

/** Entry kinds (docs/formats/sstable.md). */
export const kindDelete = 0;
export const kindPut = 1;
export const kindPutMeta = 2;

/**
 * Data-block hash index (docs/formats/sstable.md, "block hash index"): an
 * open-addressing table of 2-byte buckets (entry index, 8-bit hash tag),
 * linear probing. A point lookup then compares one key (the tag rules out
 * almost every other probed entry) instead of the ~6 entries of a binary
 * search, each a likely CPU cache miss in a block just taken from a large
 * block cache.
 */
export const bucketEmpty = 0xff;
/** Blocks with more entries have no hash index (entry indexes must stay below bucketEmpty). */
export const maxHashIndexedEntries = 0xff;
/** Buckets per entry: load 2/3, so a probe sequence is ~2 buckets for a present key and ~5 for an absent one. */
const hashBucketsPerEntry = 1.5;
export const hashBucketBytes = 2;
/** Set in a block's count word when the block carries a hash index. */
const hashIndexFlag = 0x80000000;

/** Home bucket of a key hash (the key's first bloom hash, bloom.ts bloomHash) in a table of `buckets`. */
export function hashBucket(hash: number, buckets: number): number {
  return (hash >>> 0) % buckets;
}

/** The tag stored beside the entry index: the hash's top byte (the bucket comes from all of it, mod buckets). */
export function hashTag(hash: number): number {
  return hash >>> 24;
}

function bucketCount(entries: number): number {
  return Math.ceil(entries * hashBucketsPerEntry);
}

/** Blocks with fewer entries are binary searched by bytes only. */
const minPrefixIndexedEntries = 128;

/** First 4 bytes of buf[start, end) as a big-endian integer, zero padded. */
export function keyPrefix32(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  return (
    ((n > 0 ? (buf[start] as number) : 0) * 0x1000000) +
    (((n > 1 ? (buf[start + 1] as number) : 0) << 16) | ((n > 2 ? (buf[start + 2] as number) : 0) << 8) | (n > 3 ? (buf[start + 3] as number) : 0))
  );
}

export class BlockBuilder {
  private readonly writer: ByteWriter;
  private offsets: number[] = [];
  /** Key hashes of the entries, for the hash index (when `hashIndex`). */
  private readonly hashes: number[] = [];
  private lastKeyStart = 0;
  private lastKeyEnd = 0;

  /** `hashIndex`: give blocks of ≤ maxHashIndexedEntries entries a hash index (data blocks; add then needs each key's hash). */
  constructor(
    initialBytes: number,
    private readonly hashIndex = false,
  ) {
    this.writer = new ByteWriter(initialBytes);
  }

  get count(): number {
    return this.offsets.length;
  }

  /** Bytes the block will take once finished. */
  get estimatedBytes(): number {
    const n = this.offsets.length;
    return this.writer.length + 4 * n + 4 + (this.hashIndex && n <= maxHashIndexedEntries ? hashBucketBytes * bucketCount(n) + 2 : 0);
  }

  add(key: Uint8Array, kind: number, value: Uint8Array | undefined, meta: Uint8Array | undefined, hash = 0): void {
    const w = this.writer;
    this.offsets.push(w.length);
    if (this.hashIndex) this.hashes.push(hash);
    w.varint(key.length);
    this.lastKeyStart = w.length;
    w.bytes(key);
    this.lastKeyEnd = w.length;
    w.u8(kind);
    if (kind === kindPutMeta) {
      const m = meta as Uint8Array;
      w.varint(m.length);
      w.bytes(m);
    }
    if (kind !== kindDelete) {
      const v = value as Uint8Array;
      w.varint(v.length);
      w.bytes(v);
    }
  }

  /**
   * add() for an entry given as ranges: the key `keySrc[keyStart, keyEnd)`,
   * the value `valueSrc[valueStart, valueEnd)` and the metadata
   * `valueSrc[valueEnd, metaEnd)` (stored after the value, as the memtable
   * keeps them), so a flush makes no view per entry.
   */
  addRange(keySrc: Uint8Array, keyStart: number, keyEnd: number, kind: number, valueSrc: Uint8Array, valueStart: number, valueEnd: number, metaEnd: number, hash: number): void {
    const w = this.writer;
    this.offsets.push(w.length);
    if (this.hashIndex) this.hashes.push(hash);
    w.varint(keyEnd - keyStart);
    this.lastKeyStart = w.length;
    w.bytesRange(keySrc, keyStart, keyEnd);
    this.lastKeyEnd = w.length;
    w.u8(kind);
    if (kind === kindPutMeta) {
      w.varint(metaEnd - valueEnd);
      w.bytesRange(valueSrc, valueEnd, metaEnd);
    }
    if (kind !== kindDelete) {
      w.varint(valueEnd - valueStart);
      w.bytesRange(valueSrc, valueStart, valueEnd);
    }
  }

  /** A copy of the last key added. */
  lastKey(): Buffer {
    return Buffer.from(this.lastKeyView());
  }

  /** The last key added, as a view that is valid until the next add. */
  lastKeyView(): Buffer {
    return this.writer.buf.subarray(this.lastKeyStart, this.lastKeyEnd);
  }

  /** The finished block; the builder is reset for the next one. */
  finish(): Buffer {
    return Buffer.from(this.finishView());
  }

  /**
   * The finished block as a view into the builder, valid until the next add:
   * a table builder copies it into its output at once, so a block costs no
   * buffer of its own (a 4 KiB buffer per block was garbage that outlived
   * the awaits of a flush and piled up in old space).
   */
  finishView(): Buffer {
    const w = this.writer;
    const offsets = this.offsets;
    const n = offsets.length;
    for (let i = 0; i < n; i++) w.u32(offsets[i] as number);
    if (this.hashIndex && n > 0 && n <= maxHashIndexedEntries) {
      const buckets = bucketCount(n);
      const bytes = hashBucketBytes * buckets;
      w.ensure(bytes + 2);
      const at = w.length;
      const buf = w.buf;
      buf.fill(bucketEmpty, at, at + bytes);
      for (let i = 0; i < n; i++) {
        const hash = this.hashes[i] as number;
        let b = hashBucket(hash, buckets);
        while (buf[at + hashBucketBytes * b] !== bucketEmpty) if (++b === buckets) b = 0;
        buf[at + hashBucketBytes * b] = i;
        buf[at + hashBucketBytes * b + 1] = hashTag(hash);
      }
      w.length += bytes;
      w.u8(buckets & 0xff);
      w.u8(buckets >>> 8);
      w.u32(n + hashIndexFlag);
    } else {
      w.u32(n);
    }
    const out = w.view();
    w.reset();
    offsets.length = 0;
    this.hashes.length = 0;
    return out;
  }
}

/**
 * A decoded (decompressed, checksum-verified) block. Positions of the last
 * decoded entry are left in fields instead of returned objects, so a point
 * lookup allocates nothing until it copies the value out.
 */
export class Block {
  count = 0;
  private offsetsStart = 0;
  // Fields of the entry last decoded by decode().
  keyStart = 0;
  keyEnd = 0;
  kind = 0;
  metaStart = 0;
  metaEnd = 0;
  valueStart = 0;
  valueEnd = 0;

  /**
   * Set once a cursor has been given this block: cursors keep views into it,
   * so neither it nor its buffer may ever be reused (see BlockCache).
   */
  lent = false;
  buf: Buffer;
  private file: string;
  private fileOffset: number;

  /** The block is `buf[0, length)`; `buf` may have spare room (a recycled buffer), which the block cache charges. */
  constructor(buf: Buffer, file: string, fileOffset: number, length = buf.length) {
    this.buf = buf;
    this.file = file;
    this.fileOffset = fileOffset;
    this.init(length);
  }

  /**
   * Makes this object the block now read into `buf[0, length)`, so that a
   * block-cache miss allocates no new objects (evicted blocks would
   * otherwise pile up as old-generation garbage).
   */
  reuse(buf: Buffer, file: string, fileOffset: number, length: number): void {
    this.buf = buf;
    this.file = file;
    this.fileOffset = fileOffset;
    this.prefixes = undefined;
    this.searches = 0;
    this.lent = false;
    this.init(length);
  }

  /** The block's bytes: `buf[0, byteLength)` (buf may be longer, a recycled buffer). */
  byteLength = 0;

  private init(length: number): void {
    this.byteLength = length;
    if (length < 4) this.fail(0, 'block shorter than its count');
    let count = readU32(this.buf, length - 4);
    let end = length - 4;
    this.hashStart = 0;
    this.hashBuckets = 0;
    if (count >= hashIndexFlag) {
      count -= hashIndexFlag;
      if (end < 2) this.fail(0, 'block shorter than its hash index size');
      const buckets = (this.buf[end - 2] as number) | ((this.buf[end - 1] as number) << 8);
      end -= 2;
      if (buckets <= count || count > maxHashIndexedEntries || hashBucketBytes * buckets > end) this.fail(end, `hash index of ${buckets} buckets for ${count} entries in ${length} bytes`);
      end -= hashBucketBytes * buckets;
      this.hashStart = end;
      this.hashBuckets = buckets;
    }
    // `| 0`: count came from an unsigned read (a float when the flag bit was set); keep the fields small integers.
    this.count = count | 0;
    this.offsetsStart = (end - 4 * count) | 0;
    if (this.offsetsStart < 0) this.fail(length - 4, `block count ${count} does not fit in ${length} bytes`);
  }

  /** Start and size of the hash index; 0 buckets: none (index blocks, big blocks, format version 1). */
  private hashStart = 0;
  private hashBuckets = 0;

  /**
   * Index of the entry whose key equals `key`, or -1. `hash` is the key's
   * first bloom hash. With a hash index the probe sequence from the key's
   * home bucket names the candidates; their keys are still compared, so a
   * bad bucket can only make a lookup miss, never return another key's entry.
   */
  find(key: Buffer, hash: number): number {
    const buckets = this.hashBuckets;
    if (buckets !== 0) {
      const buf = this.buf;
      const start = this.hashStart;
      const tag = hashTag(hash);
      let b = hashBucket(hash, buckets);
      // The builder leaves more buckets than entries, so an intact table has an empty bucket; the bound guards a corrupt one.
      for (let probes = 0; probes < buckets; probes++) {
        const at = start + hashBucketBytes * b;
        const entry = buf[at] as number;
        if (entry === bucketEmpty) return -1;
        if (buf[at + 1] === tag) {
          if (entry >= this.count) this.fail(at, `hash bucket names entry ${entry} of ${this.count}`);
          if (this.compareAt(key, entry) === 0) return entry;
        }
        if (++b === buckets) b = 0;
      }
      return -1;
    }
    const i = this.lowerBound(key);
    return i < this.count && this.compareAt(key, i) === 0 ? i : -1;
  }

  private fail(at: number, what: string): never {
    throw new CorruptionError(`Corrupt SSTable ${this.file}: ${what} (block at offset ${this.fileOffset}, byte ${at})`, {
      file: this.file,
      offset: this.fileOffset,
    });
  }

  private varintAt(pos: number): number {
    // Returns value; leaves the position after it in this.cursor. Integer
    // arithmetic only: a float here (2 ** shift) made V8 store the block's
    // position fields as boxed doubles, one more memory access per field read.
    const buf = this.buf;
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= this.offsetsStart) this.fail(pos, 'varint runs past the entries');
      const byte = buf[pos++] as number;
      if (shift === 28) {
        // The fifth byte: only 4 bits fit in 32; lengths never come near it.
        if (byte > 0x0f) this.fail(pos, 'varint longer than 32 bits');
        result = (result + byte * 0x10000000) | 0;
        break;
      }
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    if (result < 0) this.fail(pos, 'varint beyond 2^31');
    this.cursor = pos;
    return result;
  }

  private cursor = 0;

  private entryOffset(i: number): number {
    const offset = readU32(this.buf, this.offsetsStart + 4 * i);
    if (offset >= this.offsetsStart) this.fail(offset, `entry ${i} offset out of range`);
    return offset;
  }

  /** Sets keyStart/keyEnd for entry i. */
  decodeKey(i: number): void {
    const len = this.varintAt(this.entryOffset(i));
    this.keyStart = this.cursor;
    this.keyEnd = this.cursor + len;
    if (this.keyEnd > this.offsetsStart) this.fail(this.keyStart, 'key runs past the entries');
  }

  /** Decodes entry i completely into the position fields. */
  decode(i: number): void {
    this.decodeKey(i);
    let pos = this.keyEnd;
    if (pos >= this.offsetsStart) this.fail(pos, 'missing entry kind');
    const kind = this.buf[pos++] as number;
    this.kind = kind;
    this.metaStart = this.metaEnd = pos;
    if (kind === kindPutMeta) {
      const len = this.varintAt(pos);
      this.metaStart = this.cursor;
      this.metaEnd = this.cursor + len;
      pos = this.metaEnd;
    } else if (kind !== kindPut && kind !== kindDelete) {
      this.fail(pos - 1, `unknown entry kind ${kind}`);
    }
    if (kind === kindDelete) {
      this.valueStart = this.valueEnd = pos;
    } else {
      const len = this.varintAt(pos);
      this.valueStart = this.cursor;
      this.valueEnd = this.cursor + len;
    }
    if (this.valueEnd > this.offsetsStart) this.fail(this.valueStart, 'value runs past the entries');
  }

  /** Compares `key` with entry i's key (negative: key sorts before the entry). */
  compareAt(key: Buffer, i: number): number {
    this.decodeKey(i);
    return compareBytes(key, this.buf, this.keyStart, this.keyEnd);
  }

  /**
   * The first 4 bytes of every key (big-endian, zero padded), built on the
   * second search of a large block (an index block): order-preserving, so binary search runs on integers and only
   * entries sharing the searched prefix need a byte compare.
   */
  private prefixes: Uint32Array | undefined = undefined;

  private buildPrefixes(): Uint32Array {
    const prefixes = new Uint32Array(this.count);
    const buf = this.buf;
    for (let i = 0; i < this.count; i++) {
      this.decodeKey(i);
      prefixes[i] = keyPrefix32(buf, this.keyStart, this.keyEnd);
    }
    this.prefixes = prefixes;
    return prefixes;
  }

  private searches = 0;

  /** Index of the first entry with key ≥ `key` (count when none). */
  lowerBound(key: Buffer): number {
    // Small blocks (data blocks: tens of entries) and blocks searched once are
    // cheaper to search by bytes than to index; index blocks get the prefixes.
    if (this.prefixes === undefined && (this.count < minPrefixIndexedEntries || this.searches++ === 0)) {
      return this.lowerBoundBytes(key, 0, this.count);
    }
    const prefixes = this.prefixes ?? this.buildPrefixes();
    const p = keyPrefix32(key, 0, key.length);
    // [lo, hi): the entries whose prefix equals p.
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((prefixes[mid] as number) < p) lo = mid + 1;
      else hi = mid;
    }
    let end = this.count;
    let probe = lo;
    while (probe < end) {
      const mid = (probe + end) >>> 1;
      if ((prefixes[mid] as number) <= p) probe = mid + 1;
      else end = mid;
    }
    return this.lowerBoundBytes(key, lo, probe);
  }

  private lowerBoundBytes(key: Buffer, lo: number, hi: number): number {
    // Zero-padded 4-byte prefixes preserve order, so only equal prefixes need
    // the byte compare (a call into C++); with random keys that is one or two probes.
    const p = keyPrefix32(key, 0, key.length);
    const buf = this.buf;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      this.decodeKey(mid);
      const q = keyPrefix32(buf, this.keyStart, this.keyEnd);
      const cmp = p !== q ? p - q : compareBytes(key, buf, this.keyStart, this.keyEnd);
      if (cmp > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the last entry with key ≤ `key` (-1 when none). */
  upperBoundBefore(key: Buffer): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareAt(key, mid) >= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  keyCopy(): Buffer {
    return Buffer.from(this.buf.subarray(this.keyStart, this.keyEnd));
  }

  keyView(): Buffer {
    return this.buf.subarray(this.keyStart, this.keyEnd);
  }

  valueCopy(): Buffer {
    const out = Buffer.allocUnsafe(this.valueEnd - this.valueStart);
    this.buf.copy(out, 0, this.valueStart, this.valueEnd);
    return out;
  }

  metaCopy(): Buffer | undefined {
    return this.kind === kindPutMeta ? Buffer.from(this.buf.subarray(this.metaStart, this.metaEnd)) : undefined;
  }
}
