/** Options of the LSM engine: every limit is a named constant with its unit last. */
import { InvalidArgumentError } from '../core/index.ts';

export type SyncMode = 'always' | 'interval' | 'none';

/**
 * Decides, for each live entry a compaction rewrites, whether it is kept.
 * `key`, `value` and `meta` are views valid only during the call. A dropped
 * entry is removed outright when no deeper level can hold an older version
 * of its key, and otherwise rewritten as a deletion, so an older version
 * never reappears. Not called for deletions, nor by memtable flushes or
 * trivial moves (files moved down without being rewritten).
 */
export type CompactionFilter = (key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined) => 'keep' | 'drop';

export interface LsmOptions {
  /** Largest key accepted. 64 KiB: keys are compared and indexed often; big keys belong in values. */
  maxKeyBytes: number;
  /**
   * Largest value accepted. 16 MiB: a value is written to the WAL and the
   * memtable whole and read back whole, so one value must stay well inside
   * the memtable budget; bigger objects belong in blob storage.
   */
  maxValueBytes: number;
  /** Largest metadata (version, expiry) stored beside a value. */
  maxMetaBytes: number;
  /**
   * A memtable becomes immutable and is flushed to an SSTable once its
   * memory or the bytes written through it (its WAL, which a restart
   * replays) pass this size; overwrites in place grow only the latter.
   */
  memtableBytes: number;
  /** Target uncompressed size of one SSTable data block. */
  blockBytes: number;
  /** Bloom filter bits per key (10 → about 1.1 % false positives with the blocked filter). */
  bloomBitsPerKey: number;
  /** Decoded data blocks kept in memory (LRU by bytes). */
  blockCacheBytes: number;
  /**
   * Rows (key, value, metadata) kept in one slab, found by a hash probe
   * (row-cache.ts): the slab and its index together; 0 turns it off.
   */
  rowCacheBytes: number;
  /** `always`: a write is acknowledged after fdatasync; `interval`: fdatasync every `syncIntervalMs`; `none`: left to the OS. */
  sync: SyncMode;
  syncIntervalMs: number;
  /**
   * Group commit linger (sync `always`): after an fdatasync, wait up to this
   * long for as many writers as the last group held before taking the next
   * group, so closed-loop writers woken by one fdatasync share the next one
   * instead of splitting into a few small groups. No wait when the queue
   * already holds that many, when the last group had fewer than
   * `groupCommitLingerMinWrites` writes, or when this is 0. A put still
   * resolves only after the fdatasync that covers its record.
   */
  groupCommitLingerMs: number;
  /** Groups smaller than this never make the next one wait (a lone writer pays no linger). */
  groupCommitLingerMinWrites: number;
  /** WAL bytes buffered in memory (sync `none`/`interval`) before they are appended. */
  walBufferBytes: number;
  /** Compaction output files are cut at this size. */
  targetFileBytes: number;
  /** L0 compacts into L1 when it holds this many files. */
  level0CompactionFiles: number;
  /** Writes wait for compaction while L0 holds this many files (bounds read amplification). */
  level0StopWritesFiles: number;
  /** Size target of level 1; each deeper level is `levelSizeMultiplier` times bigger. */
  level1Bytes: number;
  levelSizeMultiplier: number;
  /**
   * A flush puts the data blocks it writes into the block cache, decoded, as
   * it builds them (RocksDB's prepopulate_block_cache = kFlushOnly): the
   * keys that just left the memtable are the likeliest to be read next, and
   * without this their first reads pread, checksum and decompress a cold
   * table on the event loop. Compaction outputs are not prepopulated (they
   * would push out blocks that reads chose), nor is a flush into a full
   * cache when no read came since the last flush (a bulk load: its blocks
   * would push out others until compaction rewrote them unread).
   */
  prepopulateBlockCacheOnFlush: boolean;
  /**
   * An SSTable being written (flush or compaction) is synced every this many
   * bytes (RocksDB's bytes_per_sync), so the kernel never holds a whole
   * table's dirty pages for its final fdatasync, which a WAL fdatasync then
   * queues behind; 0: only the final sync. Not measured to help on the
   * bench machine (ext4, tables of 16 MiB), so off by default.
   */
  tableBytesPerSync: number;
  /**
   * Under sync `always` and `interval`, a new WAL is first written full of
   * zeros, as long as the memtable budget (at most maxWalPreallocateBytes),
   * and synced (PostgreSQL's wal_init_zero): a group commit's fdatasync then
   * overwrites blocks already allocated and flushes data only, with no file
   * size to journal. Measured on ext4 (bench/RESULTS.md, storage session 8):
   * fdatasync p50 about halved, p99 a third, less system CPU per sync. The
   * next WAL is made this way in the background while the memtable fills;
   * the first one delays open by one such write.
   */
  walPreallocate: boolean;
  /**
   * Under sync `always`, WAL fdatasyncs run on the event loop's thread (as
   * Redis's appendfsync always does) instead of the thread pool
   * (OpenAppendOptions.syncInline): no hand-off to a pool thread and back,
   * at the price of a loop blocked for the sync. (`interval`'s syncs cover
   * a whole interval's writes, which nobody waits for: always on the pool.)
   */
  syncOnLoop: boolean;
  /** Data block codec; chosen by measurement (src/storage/README.md). */
  compression: 'lz4' | 'none';
  /** Lets the owner purge entries during compaction (e.g. expired replication tombstones); none by default. */
  compactionFilter?: CompactionFilter;
}

export const defaultLsmOptions: Readonly<LsmOptions> = Object.freeze({
  maxKeyBytes: 64 * 1024,
  maxValueBytes: 16 * 1024 * 1024,
  maxMetaBytes: 4 * 1024,
  // 16 MiB, not 32: measured with bench:engine at 1M keys, peak RSS fell by
  // ~75 MiB for 32 MiB less memtable budget (two memtables), because the heap
  // garbage a flushed memtable leaves scales with its size; fill throughput
  // did not measurably change (bench/RESULTS.md).
  memtableBytes: 16 * 1024 * 1024,
  blockBytes: 4 * 1024,
  bloomBitsPerKey: 10,
  // 96 MiB: at bench:engine's 1M keys (116 MB of incompressible tables) 64
  // MiB left half the uniform reads to a pread and read-hit straddling its
  // target (0.21-0.26x the Map on a quiet machine); 96 MiB gave +18 %
  // read-hit for +35 MiB peak RSS (block cache hit ratio 0.47 -> 0.70;
  // bench/RESULTS.md, session 5).
  blockCacheBytes: 96 * 1024 * 1024,
  // 24 MiB: a node's 100k keys of 100-byte values (~200-byte rows with the
  // replication metadata) fit whole, so each hot GET is a hash probe
  // (bench/engine-hot.ts getNow-tables: 1.56 → 1.11 µs of CPU against 8 MiB,
  // which held half of them). Filled only by reads.
  rowCacheBytes: 24 * 1024 * 1024,
  sync: 'none',
  syncIntervalMs: 100,
  walBufferBytes: 256 * 1024,
  // Off by default: against redis-benchmark -c 50 -P 1 a 1 ms linger raised
  // writes per fdatasync 25 -> 35-43 and SET ops/s in 9 of 12 pairs, but in
  // the one quiet bench:cluster pair it cost 0.5-1.3 ms of update p50 and
  // 10-20 % of ops/s (a cluster's independent writers keep arriving, so the
  // wait rarely times out and becomes latency; bench/RESULTS.md, session 6).
  // Worth 1 on a node whose clients are few, closed-loop and near.
  groupCommitLingerMs: 0,
  groupCommitLingerMinWrites: 4,
  targetFileBytes: 8 * 1024 * 1024,
  // Compaction shares the event loop with requests (LevelDB's runs on its own
  // thread), so L0 batches more files per L0→L1 compaction than LevelDB's 4:
  // with random keys every L0→L1 compaction rewrites most of L1, and fewer,
  // larger ones cut that rewriting; a lookup pays one Bloom probe per L0 file.
  level0CompactionFiles: 8,
  level0StopWritesFiles: 20,
  level1Bytes: 256 * 1024 * 1024,
  levelSizeMultiplier: 10,
  compression: 'lz4',
  // On: measured with bench:cluster (bench/RESULTS.md, storage session 7).
  prepopulateBlockCacheOnFlush: true,
  // Off: with 1 MiB, two alternated pairs of bench:cluster runs (loaded
  // machine) showed no change in the WAL fdatasync times during flushes
  // (p90 10-16 ms against 10-32, p99 21-79 against 27-153, the loop delay
  // included) nor in the cluster p99 (bench/RESULTS.md, storage session 7).
  tableBytesPerSync: 0,
  walPreallocate: true,
  // Off. On a loaded machine it won (bench:cluster pairs: the group-commit
  // sync as the loop sees it 3.4-4.8 -> 0.8-1.6 ms mean, healthy update p50
  // 12.5-13.4 -> 5.1-5.3 ms), but on a quiet one the cluster lost with it:
  // two alternated pairs, healthy ringkv-resp 10.3k / 10.7k ops/s, p99 19.5 /
  // 19.0 ms off against 9.8k / 8.5k, 23.5 / 23.7 ms on, reads waiting behind
  // the loop's sync (read p50 3.3-3.4 -> 4.1-4.8 ms). A single node under
  // redis-benchmark gained 5-15 % (bench/RESULTS.md, storage session 8).
  syncOnLoop: false,
});

/** A preallocated WAL is no longer than this, whatever the memtable budget (a longer log grows the file as usual). */
export const maxWalPreallocateBytes = 64 * 1024 * 1024;

/** Deepest level; 7 levels of ×10 hold far more than one node will. */
export const maxLevels = 7;

function positiveInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`Option ${name} must be an integer ≥ ${min}, got ${value}`);
  }
}

export function resolveOptions(partial: Partial<LsmOptions> = {}): LsmOptions {
  const options: LsmOptions = { ...defaultLsmOptions, ...partial };
  positiveInteger('maxKeyBytes', options.maxKeyBytes, 1);
  positiveInteger('maxValueBytes', options.maxValueBytes, 0);
  positiveInteger('maxMetaBytes', options.maxMetaBytes, 0);
  positiveInteger('memtableBytes', options.memtableBytes, 1024);
  positiveInteger('blockBytes', options.blockBytes, 256);
  positiveInteger('bloomBitsPerKey', options.bloomBitsPerKey, 1);
  positiveInteger('blockCacheBytes', options.blockCacheBytes, 0);
  positiveInteger('rowCacheBytes', options.rowCacheBytes, 0);
  positiveInteger('syncIntervalMs', options.syncIntervalMs, 1);
  positiveInteger('walBufferBytes', options.walBufferBytes, 0);
  positiveInteger('groupCommitLingerMs', options.groupCommitLingerMs, 0);
  positiveInteger('groupCommitLingerMinWrites', options.groupCommitLingerMinWrites, 1);
  positiveInteger('tableBytesPerSync', options.tableBytesPerSync, 0);
  positiveInteger('targetFileBytes', options.targetFileBytes, 1024);
  positiveInteger('level0CompactionFiles', options.level0CompactionFiles, 1);
  positiveInteger('level0StopWritesFiles', options.level0StopWritesFiles, options.level0CompactionFiles);
  positiveInteger('level1Bytes', options.level1Bytes, 1024);
  positiveInteger('levelSizeMultiplier', options.levelSizeMultiplier, 2);
  if (!['always', 'interval', 'none'].includes(options.sync)) {
    throw new InvalidArgumentError(`Option sync must be "always", "interval" or "none", got ${JSON.stringify(options.sync)}`);
  }
  if (!['lz4', 'none'].includes(options.compression)) {
    throw new InvalidArgumentError(`Option compression must be "lz4" or "none", got ${JSON.stringify(options.compression)}`);
  }
  if (typeof options.prepopulateBlockCacheOnFlush !== 'boolean') {
    throw new InvalidArgumentError(`Option prepopulateBlockCacheOnFlush must be true or false, got ${JSON.stringify(options.prepopulateBlockCacheOnFlush)}`);
  }
  for (const name of ['walPreallocate', 'syncOnLoop'] as const) {
    if (typeof options[name] !== 'boolean') throw new InvalidArgumentError(`Option ${name} must be true or false, got ${JSON.stringify(options[name])}`);
  }
  if (options.compactionFilter !== undefined && typeof options.compactionFilter !== 'function') {
    throw new InvalidArgumentError(`Option compactionFilter must be a function, got ${typeof options.compactionFilter}`);
  }
  return options;
}
