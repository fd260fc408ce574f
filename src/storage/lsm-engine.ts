/**
 * The LSM engine: WAL → memtable → SSTables, leveled compaction, block and
 * row caches. See src/storage/README.md for the design and invariants, and
 * docs/formats/ for the bytes on disk.
 */
import {
  ClosedError,
  InvalidArgumentError,
  IoError,
  asBuffer,
  describeKey,
  isRingkvError,
} from '../core/index.ts';
import type { AppendFile, Clock, FileSystem, Logger, OpenAppendOptions, Timer } from '../core/index.ts';
import type { Block } from './block.ts';
import { keyPrefix32, kindDelete, kindPut, kindPutMeta } from './block.ts';
import { bloomHash } from './bloom.ts';
import { BlockCache } from './block-cache.ts';
import { RowCache } from './row-cache.ts';
import { ByteWriter, copyOf } from './codec.ts';
import { isBottommost, keyRange, levelBytes, pickCompaction, pickForLevel } from './compaction.ts';
import type { CompactionPick } from './compaction.ts';
import { LevelCursor, MemCursor, MergeCursor, TableCursor, firstTableEndingAtOrAfter } from './cursor.ts';
import type { Cursor } from './cursor.ts';
import type { BatchOp, Engine, EngineEntry, EngineStats, KeyRange } from './engine.ts';
import { manifestTempName, readManifest, writeManifest } from './manifest.ts';
import type { ManifestTable } from './manifest.ts';
import { Memtable } from './memtable.ts';
import { maxLevels, maxWalPreallocateBytes, resolveOptions } from './options.ts';
import type { LsmOptions } from './options.ts';
import { HashArrayPool, Table, TableBuilder, tableFileName } from './sstable.ts';
import type { TableMeta } from './sstable.ts';
import { encodeBatchRecord, encodePutRecord, replayWal, walFileName, walHeader, walHeaderBytes } from './wal.ts';

export interface LsmEnv {
  fs: FileSystem;
  clock: Clock;
  log: Logger;
}

/**
 * A flush or compaction step yields to the event loop after this many
 * entries; a flush step (its sort included) also once it has run
 * `stepBudgetMs` (checked every `entriesPerClockCheck` entries). Steps of
 * 512 entries took 0.5 ms at the median and 1.1 ms at p90, but 7 ms at p99
 * and up to 60 ms (a loaded machine, 100k keys: bench/engine-hot.ts). With a
 * virtual clock only the count applies.
 */
const entriesPerStep = 512;
const stepBudgetMs = 2;
const entriesPerClockCheck = 16;
/** While a flush or compaction is pending, one put in 64 and one read in 256 yield to the event loop (a mask). */
const writesPerYield = 63;
const readsPerYield = 255;
/**
 * Batches yield once per 128 entries written (a mask), not once per 64 calls:
 * with batches of 100, per-call yields gave a compaction one 512-entry step
 * per 6,400 entries written, so the compaction a batch fill started ran
 * mostly during the reads that followed. bench:engine at 1M keys, quiet
 * machine (fill-batch100 / read-hit, ops/s): per 64 calls 432 k / 175 k;
 * per 128 entries 372–396 k / 192–195 k; per 64 entries 335 k / 189 k; per
 * 256 entries 376 k / 176 k; LevelDB's fill-batch100 232–336 k and the Map's
 * read-hit 689–764 k in the same runs (bench/RESULTS.md).
 */
const batchEntriesPerYieldMask = 127;
/**
 * After a group commit linger that timed out with fewer than half of the
 * woken writers back, this many groups go without lingering: the wait pays
 * off only for writers that come back within groupCommitLingerMs.
 */
const lingerBackoffGroups = 4;
/** Bytes one group commit writes at most (bounds the latency of the writers in it). */
const maxGroupCommitBytes = 4 * 1024 * 1024;

/** A copy in one allocation (Buffer.from(view) makes two objects). */
function copyBytes(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  out.set(bytes);
  return out;
}

/** Returned by writes that finished synchronously. */
const resolvedVoid: Promise<void> = Promise.resolve();

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function fileNumber(name: string, suffix: string): number | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const n = Number(name.slice(0, -suffix.length));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** A WAL created ahead of the rotation that will use it. */
interface NextWal {
  number: number;
  file: AppendFile;
}

/**
 * The next memtable's WAL is created once the memtable holds this fraction
 * of memtableBytes: early enough that its syncs are long done at the
 * rotation, late enough that a burst of writes does not leave an unused file.
 */
const walPrepareFraction = 0.5;

/**
 * A write waiting for group commit: a batch, or one put (`batch` undefined:
 * `key`, `value`, `meta`), so a put builds no batch array or op object.
 * Settled by `resolve`/`reject` (put, write) or by `done` (putCallback).
 */
interface PendingWrite {
  batch: readonly BatchOp[] | undefined;
  key: Uint8Array;
  value: Uint8Array;
  meta: Uint8Array | undefined;
  resolve: (() => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
  done: ((error: Error | undefined) => void) | undefined;
}

/** The key and value of a queued batch (unused: the batch holds them). */
const noBytes = new Uint8Array(0);

interface VersionEdit {
  add: { level: number; table: Table }[];
  remove: Table[];
  logNumber?: number;
}

function asIoError(error: unknown, what: string): Error {
  if (isRingkvError(error)) return error;
  return new IoError(`${what}: ${String(error)}`, { cause: error });
}

/**
 * How a new WAL is opened: preallocated under a syncing mode
 * (LsmOptions.walPreallocate), a quarter longer than the memtable budget
 * because an overwrite adds its key and record header to the log but not to
 * the memtable's count.
 */
function walOpenOptions(options: LsmOptions): OpenAppendOptions {
  if (options.sync === 'none') return { truncate: true };
  const preallocateBytes = options.walPreallocate ? Math.min(Math.ceil(options.memtableBytes * 1.25), maxWalPreallocateBytes) + walHeaderBytes : 0;
  // Under `interval` a sync covers a whole interval's writes and nobody waits for it: off the loop.
  return { truncate: true, preallocateBytes, syncInline: options.syncOnLoop && options.sync === 'always' };
}

/**
 * Opens a new WAL; when its zeros cannot be written (a disk too full for
 * them, with room left for the records themselves), as a plain growing file.
 */
async function openWalFile(fs: FileSystem, log: Logger, path: string, options: LsmOptions): Promise<AppendFile> {
  const open = walOpenOptions(options);
  if ((open.preallocateBytes ?? 0) === 0) return fs.openAppend(path, open);
  try {
    return await fs.openAppend(path, open);
  } catch (error) {
    log.warn('Cannot preallocate the WAL; using a growing file (slower syncs)', { file: path, error: String(error) });
    return fs.openAppend(path, { ...open, preallocateBytes: 0 });
  }
}

export class LsmEngine implements Engine {
  private readonly options: LsmOptions;
  private readonly fs: FileSystem;
  private readonly clock: Clock;
  private readonly log: Logger;
  private mem: Memtable;
  private imm: Memtable | undefined = undefined;
  /** The last memtable flushed, if no scan reads it: the next memtable recycles its memory. */
  private flushedMemtable: Memtable | undefined = undefined;
  /** levels[0] newest first; deeper levels sorted by key and disjoint. */
  private levels: Table[][];
  private wal: AppendFile;
  private walGoodBytes: number;
  private walDirty = false;
  private readonly walBuffer = new ByteWriter(64 * 1024);
  private walTimer: Timer | undefined = undefined;
  private syncTimer: Timer | undefined = undefined;
  private seq = 0;
  private nextFileNumber: number;
  private logNumber: number;
  private closed = false;
  private closing = false;
  private readonly queue: PendingWrite[] = [];
  private committing = false;
  /** Writes in the last group commit: the next group lingers for as many (see linger). */
  private lastGroupWrites = 0;
  /** Set while the commit loop lingers: ends the wait early (queue long enough, close, sync). */
  private lingerWake: (() => void) | undefined = undefined;
  private lingerTarget = 0;
  /** Groups left that do not linger, after a linger that timed out (see linger). */
  private lingerSkips = 0;
  private room: Promise<void> | undefined = undefined;
  /** The WAL the next rotation will use (maybePrepareWal); undefined when its creation failed. */
  private nextWal: Promise<NextWal | undefined> | undefined = undefined;
  private rotation: Promise<void> | undefined = undefined;
  private flushing: Promise<void> | undefined = undefined;
  private flushError: unknown = undefined;
  private compacting: Promise<void> | undefined = undefined;
  private compactionError: unknown = undefined;
  private compactionWaiters: (() => void)[] = [];
  private manifestLock: Promise<void> = Promise.resolve();
  private readonly pointers: (Buffer | undefined)[] = [];
  private readonly blockCache: BlockCache;
  private readonly hashArrays = new HashArrayPool();
  private readonly rowCache: RowCache;
  private readonly hash = new Uint32Array(2);
  private opsSinceYield = 0;
  /** counters.gets when the last flush started: a flush prepopulates the block cache only if reads came since. */
  private getsAtLastFlush = 0;
  /** When the running background step (flush or compaction) last resumed. */
  private stepStartMs = 0;
  private readonly counters = {
    userBytesWritten: 0,
    walBytesWritten: 0,
    flushBytesWritten: 0,
    compactionBytesRead: 0,
    compactionBytesWritten: 0,
    flushes: 0,
    compactions: 0,
    trivialMoves: 0,
    fsyncs: 0,
    groupCommits: 0,
    writes: 0,
    gets: 0,
    stalls: 0,
    tombstonesDropped: 0,
    compactionFilterDrops: 0,
  };

  private constructor(
    readonly dir: string,
    options: LsmOptions,
    env: LsmEnv,
    state: { levels: Table[][]; wal: AppendFile; walNumber: number; nextFileNumber: number; logNumber: number; cache: BlockCache },
  ) {
    this.options = options;
    this.fs = env.fs;
    this.clock = env.clock;
    this.log = env.log;
    this.levels = state.levels;
    this.wal = state.wal;
    this.walGoodBytes = state.wal.size;
    this.mem = new Memtable(state.walNumber, options.memtableBytes);
    this.nextFileNumber = state.nextFileNumber;
    this.logNumber = state.logNumber;
    this.blockCache = state.cache;
    this.rowCache = new RowCache(options.rowCacheBytes);
    for (const level of this.levels) for (const t of level) t.refs++;
    if (options.sync === 'interval') this.armSyncTimer();
  }

  /** Opens (or creates) the database in `dir`, recovering from the WAL. */
  static async open(dir: string, partial: Partial<LsmOptions>, env: LsmEnv): Promise<LsmEngine> {
    const options = resolveOptions(partial);
    const { fs, log } = env;
    await fs.mkdirp(dir);
    let names = await fs.list(dir);
    let state = await readManifest(fs, dir);
    if (state === undefined) {
      // No manifest: a new database, or a crash before the first manifest was durable
      // (then no write was ever acknowledged, since the WAL is created after it).
      for (const name of names) {
        if (fileNumber(name, '.sst') !== undefined || fileNumber(name, '.log') !== undefined || name === manifestTempName) {
          await fs.remove(`${dir}/${name}`);
        }
      }
      state = { nextFileNumber: 1, logNumber: 0, tables: [] };
      await writeManifest(fs, dir, state);
      names = await fs.list(dir);
    }
    const live = new Set(state.tables.map((t) => t.number));
    let maxSeen = 0;
    const logs: number[] = [];
    for (const name of names) {
      const sst = fileNumber(name, '.sst');
      const wal = fileNumber(name, '.log');
      const n = sst ?? wal;
      if (n !== undefined) maxSeen = Math.max(maxSeen, n);
      if (name === manifestTempName) await fs.remove(`${dir}/${name}`);
      else if (sst !== undefined && !live.has(sst)) await fs.remove(`${dir}/${name}`);
      else if (wal !== undefined && wal < state.logNumber) await fs.remove(`${dir}/${name}`);
      else if (wal !== undefined) logs.push(wal);
    }
    logs.sort((a, b) => a - b);
    const cache = new BlockCache(options.blockCacheBytes);
    const levels: Table[][] = Array.from({ length: maxLevels }, () => []);
    const opened: Table[] = [];
    try {
      for (const meta of state.tables) {
        const table = await Table.open(fs, `${dir}/${tableFileName(meta.number)}`, meta, cache);
        opened.push(table);
        (levels[meta.level] as Table[]).push(table);
      }
    } catch (error) {
      for (const t of opened) await t.close().catch(() => undefined);
      throw error;
    }
    (levels[0] as Table[]).sort((a, b) => b.meta.number - a.meta.number);
    for (let l = 1; l < maxLevels; l++) (levels[l] as Table[]).sort((a, b) => a.meta.smallest.compare(b.meta.smallest));

    const recovered = new Memtable(0, options.memtableBytes);
    const hash = new Uint32Array(2);
    let seq = 0;
    for (const number of logs) {
      const path = `${dir}/${walFileName(number)}`;
      const result = replayWal(await fs.readFile(path), path);
      for (const batch of result.batches) {
        seq++;
        for (const op of batch) {
          bloomHash(op.key, hash);
          recovered.set(op.key, hash[0] as number, hash[1] as number, seq, op.type === 'put' ? op.value : undefined, op.type === 'put' ? op.meta : undefined);
        }
      }
      if (result.tornTail) {
        log.warn('Truncating a torn WAL tail left by a crash', { file: path, validBytes: result.validBytes });
        await fs.truncate(path, result.validBytes);
      }
    }

    let nextFileNumber = Math.max(state.nextFileNumber, maxSeen + 1);
    const walNumber = nextFileNumber++;
    const walPath = `${dir}/${walFileName(walNumber)}`;
    const wal = await openWalFile(fs, log, walPath, options);
    wal.appendSync(walHeader());
    await wal.sync();
    await fs.syncDir(dir);
    const engine = new LsmEngine(dir, options, env, { levels, wal, walNumber, nextFileNumber, logNumber: state.logNumber, cache });
    engine.seq = seq;
    try {
      if (recovered.entries > 0) {
        engine.imm = recovered;
        engine.startFlush();
        await engine.flushing;
        if (engine.imm !== undefined) throw engine.flushError;
      } else if (logs.length > 0) {
        await engine.installVersion({ add: [], remove: [], logNumber: walNumber });
        await engine.removeObsoleteLogs();
      }
    } catch (error) {
      await engine.close().catch(() => undefined);
      throw error;
    }
    engine.maybeCompact();
    return engine;
  }

  // ------------------------------------------------------------------ reads

  private checkOpen(): void {
    if (this.closed || this.closing) throw new ClosedError(`The storage engine at ${this.dir} is closed`);
  }

  /**
   * Not an async function: the answer is computed synchronously, and an
   * already-resolved promise costs the caller's `await` one microtask
   * without an async frame per call.
   */
  get(key: Uint8Array): Promise<EngineEntry | undefined> {
    try {
      const entry = this.getNow(key);
      if ((++this.opsSinceYield & readsPerYield) === 0 && this.backgroundBusy()) return yieldToLoop().then(() => entry);
      return Promise.resolve(entry);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /**
   * Flushes and compactions advance in steps that wait for the event loop's
   * next turn. A caller that awaits operations back to back never gives the
   * loop a turn (every await resolves as a microtask), which would starve
   * them: the immutable memtable would linger and L0 would pile up. So while
   * background work is pending, every few operations take one such turn.
   */
  private backgroundBusy(): boolean {
    return this.flushing !== undefined || this.compacting !== undefined;
  }

  /** Synchronous lookup (reads hit memory or the page cache). */
  getNow(key: Uint8Array): EngineEntry | undefined {
    return this.lookup(key, false);
  }

  /**
   * getNow without copies: the entry's key is `key` itself and its value and
   * metadata are views into the engine's memory (memtable arena, row cache
   * slab or a cached block), valid until the next call into the engine. For
   * transient readers that copy the value out at once (a RESP GET).
   */
  getNowView(key: Uint8Array): EngineEntry | undefined {
    return this.lookup(key, true);
  }

  private lookup(key: Uint8Array, view: boolean): EngineEntry | undefined {
    this.checkOpen();
    this.counters.gets++;
    bloomHash(key, this.hash);
    const h1 = this.hash[0] as number;
    const h2 = this.hash[1] as number;
    const mem = this.mem;
    if (mem.mayContain(h1, h2)) {
      const id = mem.find(key, h1);
      if (id >= 0) return mem.isDeletion(id) ? undefined : this.entryFromMemtable(key, mem, id, view);
    }
    const imm = this.imm;
    if (imm?.mayContain(h1, h2) === true) {
      const id = imm.find(key, h1);
      if (id >= 0) return imm.isDeletion(id) ? undefined : this.entryFromMemtable(key, imm, id, view);
    }
    const rows = this.rowCache;
    if (rows.entries > 0) {
      const row = rows.find(key, h1);
      if (row >= 0) return this.entryFromRow(key, row, view);
    } else {
      rows.misses++;
    }
    const keyBuf = asBuffer(key);
    const levels = this.levels;
    for (const table of levels[0] as Table[]) {
      const block = table.get(keyBuf, h1, h2);
      if (block !== undefined) return this.entryFromBlock(key, h1, block, view);
    }
    for (let level = 1; level < levels.length; level++) {
      const tables = levels[level] as Table[];
      if (tables.length === 0) continue;
      const i = firstTableEndingAtOrAfter(tables, keyBuf);
      const table = tables[i];
      if (table === undefined || table.startsAfter(keyBuf, keyPrefix32(keyBuf, 0, keyBuf.length))) continue;
      const block = table.get(keyBuf, h1, h2);
      if (block !== undefined) return this.entryFromBlock(key, h1, block, view);
    }
    return undefined;
  }

  private entryFromMemtable(key: Uint8Array, mem: Memtable, id: number, view: boolean): EngineEntry {
    if (view) return { key, value: mem.value(id) as Buffer, meta: mem.meta(id) };
    const valueLength = mem.valueLength(id);
    const metaLength = mem.metaLength(id);
    if (metaLength >= 0) {
      // Stored right after the value: one copy, then two views.
      const both = Buffer.allocUnsafe(valueLength + metaLength);
      mem.copyValue(id, both, 0, true);
      return { key: copyOf(key, 0, key.length), value: both.subarray(0, valueLength), meta: both.subarray(valueLength) };
    }
    const value = Buffer.allocUnsafe(valueLength);
    mem.copyValue(id, value);
    return { key: copyOf(key, 0, key.length), value, meta: undefined };
  }

  private entryFromRow(key: Uint8Array, row: number, view: boolean): EngineEntry {
    const rows = this.rowCache;
    const slab = rows.bytes;
    const start = rows.valueStart(row);
    const end = start + rows.valueLength(row);
    const metaLength = rows.metaLength(row);
    if (view) return { key, value: slab.subarray(start, end), meta: metaLength < 0 ? undefined : slab.subarray(end, end + metaLength) };
    if (metaLength < 0) return { key: copyOf(key, 0, key.length), value: copyOf(slab, start, end), meta: undefined };
    const both = copyOf(slab, start, end + metaLength);
    return { key: copyOf(key, 0, key.length), value: both.subarray(0, end - start), meta: both.subarray(end - start) };
  }

  /**
   * The row enters the row cache if its admission rule agrees (row-cache.ts),
   * whether the block came from the file or the block cache: a row hit is a
   * hash probe, about a third of the cached-block path's CPU.
   */
  private entryFromBlock(key: Uint8Array, h1: number, block: Block, view: boolean): EngineEntry | undefined {
    if (block.kind === kindDelete) return undefined;
    const hasMeta = block.kind === kindPutMeta;
    if (this.rowCache.enabled) {
      this.rowCache.offer(key, h1, block.buf, block.valueStart, block.valueEnd, hasMeta ? block.metaStart : -1, block.metaEnd);
    }
    if (view) {
      const buf = block.buf;
      return { key, value: buf.subarray(block.valueStart, block.valueEnd), meta: hasMeta ? buf.subarray(block.metaStart, block.metaEnd) : undefined };
    }
    return { key: copyOf(key, 0, key.length), value: block.valueCopy(), meta: block.metaCopy() };
  }

  iterate(range: KeyRange = {}): AsyncIterable<EngineEntry> {
    this.checkOpen();
    // The snapshot is taken now, at the call, not when iteration starts.
    const mems = this.imm === undefined ? [this.mem] : [this.mem, this.imm];
    for (const m of mems) m.pins++;
    const levels = this.levels;
    for (const level of levels) for (const t of level) t.refs++;
    return this.scan(range, this.seq, mems, levels);
  }

  private async *scan(range: KeyRange, seq: number, mems: Memtable[], levels: Table[][]): AsyncGenerator<EngineEntry> {
    try {
      const reverse = range.reverse === true;
      const lower = range.gte ?? range.gt;
      const upper = range.lte ?? range.lt;
      const lowerBuf = lower && asBuffer(lower);
      const upperBuf = upper && asBuffer(upper);
      const from = reverse ? upperBuf : lowerBuf;
      if (range.limit !== undefined && range.limit <= 0) return;
      if (lowerBuf !== undefined && upperBuf !== undefined && lowerBuf.compare(upperBuf) > 0) return;
      const cursors: Cursor[] = mems.map((m) => new MemCursor(m, seq, reverse, from));
      for (const t of levels[0] as Table[]) cursors.push(new TableCursor(t, reverse, from, false));
      for (let l = 1; l < levels.length; l++) {
        if ((levels[l] as Table[]).length > 0) cursors.push(new LevelCursor(levels[l] as Table[], reverse, from, false));
      }
      const merge = new MergeCursor(cursors, reverse);
      let yielded = 0;
      for (; merge.key !== undefined; merge.advance()) {
        const key = merge.key;
        if (this.closed) throw new ClosedError(`The storage engine at ${this.dir} was closed during a scan`);
        if (range.gt !== undefined && key.compare(range.gt) <= 0) {
          if (reverse) break;
          continue;
        }
        if (range.lt !== undefined && key.compare(range.lt) >= 0) {
          if (reverse) continue;
          break;
        }
        if (!reverse && range.lte !== undefined && key.compare(range.lte) > 0) break;
        if (reverse && range.gte !== undefined && key.compare(range.gte) < 0) break;
        const winner = merge.winner as Cursor;
        const value = winner.value();
        if (value === undefined) continue;
        const meta = winner.meta();
        yield { key: copyBytes(key), value: copyBytes(value), meta: meta && copyBytes(meta) };
        yielded++;
        if (range.limit !== undefined && yielded >= range.limit) break;
      }
    } finally {
      for (const m of mems) m.pins--;
      for (const level of levels) for (const t of level) this.unref(t);
    }
  }

  // ------------------------------------------------------------------ writes

  /**
   * With sync none/interval and room in the memtable, a put skips the batch:
   * no array, no op object, no async frame (the same WAL record as a batch of one).
   */
  put(key: Uint8Array, value: Uint8Array, meta?: Uint8Array): Promise<void> {
    if (this.options.sync === 'always' && !this.closed && !this.closing) {
      // Straight to the group-commit queue: no async frame of write() per put.
      try {
        this.validatePut(key, value, meta);
      } catch (error) {
        return Promise.reject(error as Error);
      }
      return new Promise<void>((resolve, reject) => this.enqueue({ batch: undefined, key, value, meta, resolve, reject, done: undefined }));
    }
    if (this.options.sync === 'always' || this.closed || this.closing || this.needsRoom() || this.walDirty) {
      return this.write([meta === undefined ? { type: 'put', key, value } : { type: 'put', key, value, meta }]);
    }
    try {
      this.validatePut(key, value, meta);
      const w = this.walBuffer;
      const mark = w.length;
      encodePutRecord(w, key, value, meta);
      this.walRecordBuffered(mark);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    this.applyPut(key, value, meta);
    if ((++this.opsSinceYield & writesPerYield) === 0 && this.backgroundBusy()) return yieldToLoop();
    return resolvedVoid;
  }

  /**
   * put without a promise (Engine.putCallback): true when the write is
   * already as durable as the sync mode promises (sync `none`/`interval`
   * with room in the memtable; `done` is then never called), else false and
   * `done` is called once, later. Under sync `always` a write costs no
   * promise, no resolving functions and no closure.
   */
  putCallback(key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined, done: (error: Error | undefined) => void): boolean {
    this.checkOpen();
    this.validatePut(key, value, meta);
    if (this.options.sync === 'always') {
      this.enqueue({ batch: undefined, key, value, meta, resolve: undefined, reject: undefined, done });
      return false;
    }
    if (this.needsRoom() || this.walDirty) {
      this.write([meta === undefined ? { type: 'put', key, value } : { type: 'put', key, value, meta }]).then(
        () => done(undefined),
        (error: unknown) => done(error as Error),
      );
      return false;
    }
    const w = this.walBuffer;
    const mark = w.length;
    encodePutRecord(w, key, value, meta);
    this.walRecordBuffered(mark);
    this.applyPut(key, value, meta);
    if ((++this.opsSinceYield & writesPerYield) === 0 && this.backgroundBusy()) {
      // As put yields here: callers that write back to back must not starve the flush.
      setImmediate(done, undefined);
      return false;
    }
    return true;
  }

  delete(key: Uint8Array): Promise<void> {
    return this.write([{ type: 'delete', key }]);
  }

  private validate(batch: readonly BatchOp[]): void {
    if (!Array.isArray(batch)) throw new InvalidArgumentError('Cannot write: a batch must be an array of operations');
    for (const op of batch) {
      if (op.type === 'put') this.validatePut(op.key, op.value, op.meta);
      else if (op.type === 'delete') this.validateKey(op.key);
      else throw new InvalidArgumentError(`Cannot write: unknown operation type ${JSON.stringify((op as { type: unknown }).type)}`);
    }
  }

  private validateKey(key: Uint8Array): void {
    if (!((key as unknown) instanceof Uint8Array)) throw new InvalidArgumentError(`Cannot write: a key must be a Uint8Array, got ${typeof key}`);
    const o = this.options;
    if (key.length > o.maxKeyBytes) {
      throw new InvalidArgumentError(`Cannot write key ${describeKey(key, 40)} as it is ${key.length} bytes: the limit is ${o.maxKeyBytes} (maxKeyBytes)`);
    }
  }

  private validatePut(key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined): void {
    this.validateKey(key);
    const o = this.options;
    if (!((value as unknown) instanceof Uint8Array)) throw new InvalidArgumentError(`Cannot write key ${describeKey(key, 40)}: the value must be a Uint8Array, got ${typeof value}`);
    if (value.length > o.maxValueBytes) {
      throw new InvalidArgumentError(`Cannot write key ${describeKey(key, 40)} as its value is ${value.length} bytes: the limit is ${o.maxValueBytes} (maxValueBytes)`);
    }
    if (meta !== undefined && meta.length > o.maxMetaBytes) {
      throw new InvalidArgumentError(`Cannot write key ${describeKey(key, 40)} as its metadata is ${meta.length} bytes: the limit is ${o.maxMetaBytes} (maxMetaBytes)`);
    }
  }

  async write(batch: readonly BatchOp[]): Promise<void> {
    this.checkOpen();
    this.validate(batch);
    if (batch.length === 0) return;
    if (this.options.sync === 'always') {
      return new Promise<void>((resolve, reject) => this.enqueue({ batch, key: noBytes, value: noBytes, meta: undefined, resolve, reject, done: undefined }));
    }
    if (this.needsRoom()) await this.ensureRoom();
    if (this.walDirty) await this.repairWal();
    const w = this.walBuffer;
    const mark = w.length;
    encodeBatchRecord(w, batch);
    this.walRecordBuffered(mark);
    this.apply(batch);
    const before = this.opsSinceYield;
    this.opsSinceYield += batch.length;
    if (((before ^ this.opsSinceYield) & ~batchEntriesPerYieldMask) !== 0 && this.backgroundBusy()) await yieldToLoop();
  }

  /** A record was added to the WAL buffer at `mark`: append the buffer when full, else make sure a timer will. */
  private walRecordBuffered(mark: number): void {
    const w = this.walBuffer;
    if (w.length >= this.options.walBufferBytes) {
      try {
        this.appendWalBuffer();
      } catch (error) {
        // Keep what was buffered before this batch (it is applied); drop this batch.
        w.length = mark;
        throw error;
      }
    } else if (this.walTimer === undefined) {
      this.walTimer = this.clock.setTimer(0, () => {
        this.walTimer = undefined;
        try {
          this.appendWalBuffer();
        } catch (error) {
          this.log.warn('Cannot append buffered WAL records; the next write retries', { error: String(error) });
        }
      });
    }
  }

  /** Appends the buffered WAL records (sync none/interval). */
  private appendWalBuffer(): void {
    const w = this.walBuffer;
    if (w.length === 0 || this.closed) return;
    try {
      this.wal.appendSync(w.view());
    } catch (error) {
      this.walDirty = true;
      throw asIoError(error, `Cannot append to the WAL ${this.wal.path}`);
    }
    this.walGoodBytes += w.length;
    this.counters.walBytesWritten += w.length;
    w.reset();
  }

  /** After a failed append the file may hold part of it: cut back to the last whole record. */
  private async repairWal(): Promise<void> {
    await this.fs.truncate(this.wal.path, this.walGoodBytes);
    this.walDirty = false;
  }

  /** Resolves or rejects a queued write; a putCallback callback that throws is logged, not let into the commit loop. */
  private settle(p: PendingWrite, error: unknown): void {
    const done = p.done;
    if (done === undefined) {
      if (error === undefined) (p.resolve as () => void)();
      else (p.reject as (error: unknown) => void)(error);
      return;
    }
    try {
      done(error === undefined ? undefined : (error as Error));
    } catch (thrown) {
      this.log.error('A putCallback callback threw; the write itself is done', { error: String(thrown) });
    }
  }

  private enqueue(write: PendingWrite): void {
    this.queue.push(write);
    if (this.lingerWake !== undefined && this.queue.length >= this.lingerTarget) this.endLinger();
    if (!this.committing) {
      // Not now: at the end of this event-loop turn, with every write issued in it (see commitLoop).
      this.committing = true;
      setImmediate(() => void this.commitLoop());
    }
  }

  /**
   * Group commit. A group starts at the end of an event-loop turn (a
   * setImmediate), never at the first write of a turn, and after each
   * fdatasync the loop turns once before the next group is taken, so writers
   * woken by the last group (and requests read in that turn) join the next
   * one. Starting at the first write made groups alternate between that one
   * write and everyone else (1, 49, 1, 49 with 50 writers): twice the
   * fdatasyncs for the same writes. A put still resolves only after the
   * fdatasync that covers its record.
   */
  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue.length > 0) {
        try {
          if (this.needsRoom()) await this.ensureRoom();
          if (this.walDirty) await this.repairWal();
        } catch (error) {
          for (const p of this.queue.splice(0)) this.settle(p, error);
          continue;
        }
        const w = this.walBuffer;
        w.reset();
        let count = 0;
        while (count < this.queue.length && w.length < maxGroupCommitBytes) {
          const p = this.queue[count] as PendingWrite;
          if (p.batch === undefined) encodePutRecord(w, p.key, p.value, p.meta);
          else encodeBatchRecord(w, p.batch);
          count++;
        }
        const group = this.queue.splice(0, count);
        const bytes = w.length;
        try {
          // appendSync: a page-cache copy of microseconds, so a group commit costs
          // one thread-pool round trip (the fdatasync), not two.
          this.wal.appendSync(w.view());
          this.walGoodBytes += bytes;
          this.counters.walBytesWritten += bytes;
          await this.wal.sync();
          this.counters.fsyncs++;
          this.counters.groupCommits++;
        } catch (error) {
          this.walDirty = true;
          w.reset();
          const failure = asIoError(error, `Cannot append to the WAL ${this.wal.path}`);
          for (const p of group) this.settle(p, failure);
          continue;
        }
        w.reset();
        // Writes queued during the fdatasync, before this group's writers are woken (see linger).
        const queuedBefore = this.queue.length;
        for (const p of group) {
          if (p.batch === undefined) this.applyPut(p.key, p.value, p.meta);
          else this.apply(p.batch);
          this.settle(p, undefined);
        }
        this.lastGroupWrites = group.length;
        await yieldToLoop();
        const lingering = this.linger(queuedBefore);
        if (lingering !== undefined) await lingering;
      }
    } finally {
      this.committing = false;
    }
  }

  /**
   * After a group of n ≥ groupCommitLingerMinWrites writes, waits up to
   * groupCommitLingerMs until n more writes than were queued during its
   * fdatasync (`queuedBefore`) are queued: the group's writers coming back
   * (in-process writers come back within the loop turn after the group, and
   * then there is nothing to wait for). With closed-loop writers
   * (redis-benchmark -c 50 -P 1: 50 clients, one SET each in flight) taking
   * the queue as soon as it held the last group's count settled into two
   * groups of ~25 alternating (one queued while the other's fdatasync ran;
   * measured 24.8-25.5 writes per fdatasync with and without such a wait),
   * and an fdatasync costs about the same for 25 writes as for 50. Waiting
   * for the woken writers merges the two into one. Undefined when the last
   * group was small (a lone writer never waits) or the engine is closing.
   */
  private linger(queuedBefore: number): Promise<void> | undefined {
    const o = this.options;
    const woken = this.lastGroupWrites;
    const target = queuedBefore + woken;
    if (o.groupCommitLingerMs === 0 || woken < o.groupCommitLingerMinWrites || this.queue.length >= target || this.closing) return undefined;
    if (this.lingerSkips > 0) {
      this.lingerSkips--;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      // Kept alive: the queued writers await it (an unreferenced timer let a process with nothing else pending exit under them).
      const timer = this.clock.setTimer(
        o.groupCommitLingerMs,
        () => {
          if (this.lingerWake !== wake) return;
          // Fewer than half came back in time: these writers are not a tight closed loop
          // (a cluster's writes come back after a client and replica round trip), so waiting only adds latency.
          if (this.queue.length - queuedBefore < woken / 2) this.lingerSkips = lingerBackoffGroups;
          this.endLinger();
        },
        { keepAlive: true },
      );
      const wake = (): void => {
        timer.cancel();
        resolve();
      };
      this.lingerTarget = target;
      this.lingerWake = wake;
    });
  }

  private endLinger(): void {
    const wake = this.lingerWake;
    this.lingerWake = undefined;
    wake?.();
  }

  private applyPut(key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined): void {
    const seq = ++this.seq;
    const hash = this.hash;
    bloomHash(key, hash);
    const h1 = hash[0] as number;
    this.mem.set(key, h1, hash[1] as number, seq, value, meta);
    this.rowCache.invalidate(key, h1);
    if (this.nextWal === undefined) this.maybePrepareWal();
    this.counters.writes++;
    this.counters.userBytesWritten += key.length + value.length + (meta?.length ?? 0);
  }

  private apply(batch: readonly BatchOp[]): void {
    const seq = ++this.seq;
    const mem = this.mem;
    const rows = this.rowCache;
    const hash = this.hash;
    let bytes = 0;
    for (const op of batch) {
      bloomHash(op.key, hash);
      if (op.type === 'put') {
        mem.set(op.key, hash[0] as number, hash[1] as number, seq, op.value, op.meta);
        bytes += op.key.length + op.value.length + (op.meta?.length ?? 0);
      } else {
        mem.set(op.key, hash[0] as number, hash[1] as number, seq, undefined, undefined);
        bytes += op.key.length;
      }
      rows.invalidate(op.key, hash[0] as number);
    }
    this.counters.writes += batch.length;
    this.counters.userBytesWritten += bytes;
    if (this.nextWal === undefined) this.maybePrepareWal();
  }

  // ------------------------------------------------------------------ memtable rotation and flush

  private needsRoom(): boolean {
    return this.mem.fill >= this.options.memtableBytes || (this.levels[0] as Table[]).length >= this.options.level0StopWritesFiles;
  }

  private ensureRoom(): Promise<void> {
    this.room ??= this.makeRoom().finally(() => {
      this.room = undefined;
    });
    return this.room;
  }

  private async makeRoom(): Promise<void> {
    let flushRetried = false;
    let compactionFailed = false;
    for (;;) {
      if (this.closed) throw new ClosedError(`The storage engine at ${this.dir} is closed`);
      const l0 = (this.levels[0] as Table[]).length;
      if (l0 >= this.options.level0StopWritesFiles) {
        // Too many overlapping L0 files would make every read slow: wait for compaction.
        this.counters.stalls++;
        if (this.compacting === undefined && !compactionFailed) this.maybeCompact();
        if (this.compacting === undefined) {
          throw asIoError(this.compactionError, `Cannot write: L0 holds ${l0} files and compaction is failing`);
        }
        await new Promise<void>((resolve) => this.compactionWaiters.push(resolve));
        if (this.compactionError !== undefined) compactionFailed = true;
        continue;
      }
      // An empty memtable is never rotated, whatever its fixed costs (no endless rotation under a tiny budget).
      if (this.mem.fill < this.options.memtableBytes || this.mem.entries === 0) return;
      if (this.imm !== undefined) {
        if (this.flushing === undefined) {
          if (flushRetried) throw asIoError(this.flushError, 'Cannot flush the memtable');
          flushRetried = true;
          this.startFlush();
        }
        this.counters.stalls++;
        await this.flushing;
        continue;
      }
      await this.rotate();
    }
  }

  /** Makes the memtable immutable, starts a new WAL and memtable, and starts the flush. */
  private rotate(): Promise<void> {
    // Concurrent callers (a writer making room, compact()) share one rotation.
    this.rotation ??= this.rotateNow().finally(() => {
      this.rotation = undefined;
    });
    return this.rotation;
  }

  /**
   * Creates a WAL: header written and, unless sync is `none`, the file and
   * the directory synced, since acknowledged writes will go to it.
   */
  private async createWal(): Promise<NextWal> {
    const number = this.nextFileNumber++;
    const path = `${this.dir}/${walFileName(number)}`;
    const file = await openWalFile(this.fs, this.log, path, this.options);
    try {
      file.appendSync(walHeader());
      if (this.options.sync !== 'none') {
        await file.sync();
        await this.fs.syncDir(this.dir);
      }
    } catch (error) {
      await file.close().catch(() => undefined);
      throw asIoError(error, `Cannot start the WAL ${path}`);
    }
    return { number, file };
  }

  /**
   * Once the memtable is half full, creates the WAL of the next one (see
   * walPrepareFraction), so that the rotation does not run the new file's
   * two syncs while every writer waits. A failure is only logged: the
   * rotation then creates the file itself.
   */
  private maybePrepareWal(): void {
    if (this.nextWal !== undefined || this.mem.fill < this.options.memtableBytes * walPrepareFraction || this.closing || this.closed) return;
    this.nextWal = this.createWal().catch((error: unknown) => {
      this.log.warn('Cannot create the next WAL ahead of time; the rotation retries', { error: String(error) });
      return undefined;
    });
  }

  private async rotateNow(): Promise<void> {
    if (this.imm !== undefined) return;
    const prepared = this.nextWal === undefined ? undefined : await this.nextWal;
    this.nextWal = undefined;
    const { number, file: wal } = prepared ?? (await this.createWal());
    try {
      this.appendWalBuffer();
      // With sync always every record in the old WAL was synced before it was
      // acknowledged (a failed append is cut off by repairWal); interval must sync here.
      if (this.options.sync === 'interval' || (this.options.sync === 'always' && this.walDirty)) await this.wal.sync();
    } catch (error) {
      // The new WAL is fine: keep it for the next attempt.
      this.nextWal = Promise.resolve({ number, file: wal });
      throw asIoError(error, `Cannot sync the WAL ${this.wal.path} before starting ${wal.path}`);
    }
    // Not awaited: the writers wait for this rotation, and a close queues behind the thread pool's fdatasyncs.
    const old = this.wal;
    void old.close().catch((error: unknown) => this.log.warn('Cannot close a finished WAL', { file: old.path, error: String(error) }));
    this.wal = wal;
    this.walGoodBytes = wal.size;
    this.walDirty = false;
    this.imm = this.mem;
    this.mem = new Memtable(number, this.options.memtableBytes, this.flushedMemtable);
    this.flushedMemtable = undefined;
    this.startFlush();
  }

  private startFlush(): void {
    const flushing: Promise<void> = this.flushImmutable().then(
      () => {
        // A newer flush may have started meanwhile (the memtable rotated while
        // this one removed its logs): only clear the slot if it is still ours.
        if (this.flushing === flushing) this.flushing = undefined;
        this.flushError = undefined;
      },
      (error: unknown) => {
        if (this.flushing === flushing) this.flushing = undefined;
        this.flushError = error;
        this.log.error('Memtable flush failed; it is retried by the next write that needs room', { error: String(error) });
      },
    );
    this.flushing = flushing;
  }

  private async flushImmutable(): Promise<void> {
    const imm = this.imm;
    if (imm === undefined) return;
    const add: { level: number; table: Table }[] = [];
    if (imm.entries > 0) {
      const number = this.nextFileNumber++;
      const path = `${this.dir}/${tableFileName(number)}`;
      // Into a cache with room for the table, or for an engine that serves reads: after a
      // write-only stretch (a bulk load) the blocks would only push out others (and be
      // recycled) until compaction rewrites them.
      const reading = this.counters.gets !== this.getsAtLastFlush;
      this.getsAtLastFlush = this.counters.gets;
      const room = this.blockCache.usedBytes + imm.bytes <= this.options.blockCacheBytes;
      const warm = (reading || room) && this.options.prepopulateBlockCacheOnFlush && this.options.blockCacheBytes > 0 ? this.blockCache : undefined;
      const builder = await TableBuilder.create(this.fs, path, number, this.options, this.hashArrays, warm);
      let meta: TableMeta;
      try {
        let n = 0;
        // Sorted in steps: in one step, sorting a full memtable blocked the event loop for tens of ms.
        this.stepStartMs = this.clock.nowMs();
        const ids = await imm.sortedIdsInSteps(this.stepPause);
        for (let i = 0; i < ids.length; i++) {
          // Ranges of the arena, not views: a view per key, value and metadata was
          // ~250 bytes of garbage per entry flushed (bench/engine-hot.ts put runs).
          const id = ids[i] as number;
          const keyStart = imm.keyOffset(id);
          const keyEnd = keyStart + imm.keyLength(id);
          if (imm.isDeletion(id)) {
            builder.addRange(imm.keyChunk(id), keyStart, keyEnd, kindDelete, imm.keyChunk(id), keyEnd, keyEnd, keyEnd);
          } else {
            const metaLength = imm.metaLength(id);
            const valueStart = imm.valueOffset(id);
            const valueEnd = valueStart + imm.valueLength(id);
            const kind = metaLength < 0 ? kindPut : kindPutMeta;
            builder.addRange(imm.keyChunk(id), keyStart, keyEnd, kind, imm.valueChunk(id), valueStart, valueEnd, valueEnd + Math.max(0, metaLength));
          }
          if (this.stepDue(++n)) {
            await builder.drain();
            await this.yieldStep();
          }
        }
        meta = await builder.finish(this.stepPause);
      } catch (error) {
        await builder.abandon();
        await this.fs.remove(path).catch(() => undefined);
        throw error;
      }
      const table = await Table.open(this.fs, path, meta, this.blockCache, warm === undefined ? undefined : builder.cacheSlots);
      add.push({ level: 0, table });
      this.counters.flushBytesWritten += meta.size;
      this.counters.flushes++;
    }
    try {
      await this.installVersion({ add, remove: [], logNumber: this.mem.walNumber });
    } catch (error) {
      for (const { table } of add) {
        await table.close().catch(() => undefined);
        await this.fs.remove(table.path).catch(() => undefined);
      }
      throw error;
    }
    this.imm = undefined;
    // Unless a scan still reads it, the next memtable takes over its arena and arrays.
    if (imm.pins === 0) this.flushedMemtable = imm;
    await this.removeObsoleteLogs();
    this.maybeCompact();
  }

  private async removeObsoleteLogs(): Promise<void> {
    for (const name of await this.fs.list(this.dir)) {
      const n = fileNumber(name, '.log');
      if (n !== undefined && n < this.logNumber) await this.fs.remove(`${this.dir}/${name}`);
    }
  }

  // ------------------------------------------------------------------ versions and the manifest

  /** Applies an edit to the live table set: manifest first (durable), then memory. */
  private installVersion(edit: VersionEdit): Promise<void> {
    const run = async (): Promise<void> => {
      const removed = new Set(edit.remove);
      // A table both removed and added is moved between levels: its file stays.
      const moved = new Set(edit.add.map((a) => a.table).filter((t) => removed.has(t)));
      const levels = this.levels.map((tables) => tables.filter((t) => !removed.has(t)));
      for (const { level, table } of edit.add) (levels[level] as Table[]).push(table);
      (levels[0] as Table[]).sort((a, b) => b.meta.number - a.meta.number);
      for (let l = 1; l < levels.length; l++) (levels[l] as Table[]).sort((a, b) => a.meta.smallest.compare(b.meta.smallest));
      const logNumber = edit.logNumber ?? this.logNumber;
      const tables: ManifestTable[] = [];
      levels.forEach((level, i) => {
        for (const t of level) tables.push({ ...t.meta, level: i });
      });
      await writeManifest(this.fs, this.dir, { nextFileNumber: this.nextFileNumber, logNumber, tables });
      this.logNumber = logNumber;
      this.levels = levels;
      for (const { table } of edit.add) if (!moved.has(table)) table.refs++;
      for (const t of edit.remove) {
        if (moved.has(t)) continue;
        t.obsolete = true;
        this.unref(t);
      }
    };
    const result = this.manifestLock.then(run);
    this.manifestLock = result.catch(() => undefined);
    return result;
  }

  private unref(table: Table): void {
    table.refs--;
    if (table.refs === 0 && table.obsolete) {
      const path = table.path;
      void table
        .close()
        .then(() => this.fs.remove(path))
        .catch((error: unknown) => this.log.warn('Cannot remove an obsolete SSTable; it is removed at the next open', { file: path, error: String(error) }));
    }
  }

  // ------------------------------------------------------------------ compaction

  private maybeCompact(): void {
    if (this.compacting !== undefined || this.closed || this.closing) return;
    if (pickCompaction(this.levels, this.options, this.pointers) === undefined) return;
    this.compacting = this.compactionLoop().finally(() => {
      this.compacting = undefined;
      this.wakeCompactionWaiters();
    });
  }

  private wakeCompactionWaiters(): void {
    const waiters = this.compactionWaiters;
    this.compactionWaiters = [];
    for (const wake of waiters) wake();
  }

  private async compactionLoop(): Promise<void> {
    for (;;) {
      if (this.closed || this.closing) return;
      const pick = pickCompaction(this.levels, this.options, this.pointers);
      if (pick === undefined) return;
      try {
        await this.runCompaction(pick);
        this.compactionError = undefined;
      } catch (error) {
        if (this.closing || this.closed) return;
        this.compactionError = error;
        this.log.error('Compaction failed; it is retried after the next flush', { error: String(error) });
        return;
      } finally {
        this.wakeCompactionWaiters();
      }
    }
  }

  /** Whether a background step that has handled `n` entries should yield now. */
  private stepDue(n: number): boolean {
    if (n % entriesPerStep === 0) return true;
    return n % entriesPerClockCheck === 0 && this.clock.nowMs() - this.stepStartMs >= stepBudgetMs;
  }

  /** Pause callback for background work done in steps: yields once the step has run `stepBudgetMs`. */
  private readonly stepPause = (): Promise<void> | undefined => (this.clock.nowMs() - this.stepStartMs >= stepBudgetMs ? this.yieldStep() : undefined);

  private async yieldStep(): Promise<void> {
    await yieldToLoop();
    this.stepStartMs = this.clock.nowMs();
  }

  private async runCompaction(pick: CompactionPick, rewrite = false): Promise<void> {
    const { level, inputs, overlaps } = pick;
    const outputLevel = level + 1;
    if (inputs.length === 0) return;
    const [, largest] = keyRange(inputs);
    if (level > 0) this.pointers[level] = largest;
    if (!rewrite && overlaps.length === 0 && (level > 0 || inputs.length === 1)) {
      // Nothing to merge with: move the files down without rewriting them.
      await this.installVersion({ add: inputs.map((table) => ({ level: outputLevel, table })), remove: inputs });
      this.counters.trivialMoves++;
      return;
    }
    const all = [...inputs, ...overlaps];
    for (const t of all) t.refs++;
    const outputs: Table[] = [];
    let builder: TableBuilder | undefined;
    try {
      const cursors: Cursor[] = inputs.map((t) => new TableCursor(t, false, undefined, false));
      if (overlaps.length > 0) cursors.push(new LevelCursor(overlaps, false, undefined, false));
      const merge = new MergeCursor(cursors, false);
      const levelsAtStart = this.levels;
      const filter = this.options.compactionFilter;
      // Keys the filter dropped: their cached rows go once the new tables are installed (not before,
      // or a read in between would read the old tables and admit the row again).
      const dropped: Buffer[] = [];
      let n = 0;
      for (; merge.key !== undefined; merge.advance()) {
        const winner = merge.winner as Cursor;
        let kind = winner.kind();
        const filtered = kind !== kindDelete && filter !== undefined && filter(merge.key, winner.value() as Uint8Array, winner.meta()) === 'drop';
        // A filtered entry is rewritten as a deletion unless bottommost, so no older version below resurfaces.
        if (filtered) {
          kind = kindDelete;
          this.counters.compactionFilterDrops++;
          dropped.push(copyOf(merge.key, 0, merge.key.length));
        }
        if (kind === kindDelete && isBottommost(levelsAtStart, outputLevel, merge.key)) {
          if (!filtered) this.counters.tombstonesDropped++;
        } else {
          builder ??= await this.newTable();
          if (kind === kindDelete) builder.add(merge.key, kind, undefined, undefined);
          else builder.add(merge.key, kind, winner.value(), winner.meta());
          if (builder.estimatedBytes >= this.options.targetFileBytes) {
            outputs.push(await this.finishTable(builder));
            builder = undefined;
          }
        }
        // Compaction steps are counted only: a time budget here (1–2 ms) also
        // slowed the compaction a batch fill leaves to the reads after it
        // (bench:engine read-hit at 1M keys ~10 % lower in A/B runs).
        if (++n % entriesPerStep === 0) {
          await builder?.drain();
          await yieldToLoop();
          if (this.closing || this.closed) throw new ClosedError('Compaction stopped: the engine is closing');
        }
      }
      if (builder !== undefined) {
        outputs.push(await this.finishTable(builder));
        builder = undefined;
      }
      await this.installVersion({ add: outputs.map((table) => ({ level: outputLevel, table })), remove: all });
      for (const key of dropped) {
        bloomHash(key, this.hash);
        this.rowCache.invalidate(key, this.hash[0] as number);
      }
      this.counters.compactions++;
      this.counters.compactionBytesRead += levelBytes(all);
      this.counters.compactionBytesWritten += levelBytes(outputs);
    } catch (error) {
      if (builder !== undefined) {
        await builder.abandon();
        await this.fs.remove(builder.path).catch(() => undefined);
      }
      for (const t of outputs) {
        t.obsolete = true;
        t.refs++;
        this.unref(t);
      }
      throw error;
    } finally {
      for (const t of all) this.unref(t);
    }
  }

  private async newTable(): Promise<TableBuilder> {
    const number = this.nextFileNumber++;
    return TableBuilder.create(this.fs, `${this.dir}/${tableFileName(number)}`, number, this.options, this.hashArrays);
  }

  private async finishTable(builder: TableBuilder): Promise<Table> {
    this.stepStartMs = this.clock.nowMs();
    const meta = await builder.finish(this.stepPause);
    return Table.open(this.fs, builder.path, meta, this.blockCache);
  }

  /** Flushes the memtable and compacts every level into the deepest one in use. */
  async compact(): Promise<void> {
    this.checkOpen();
    if (this.options.sync === 'always') {
      while (this.committing) await yieldToLoop();
    }
    await this.room?.catch(() => undefined);
    while (this.flushing !== undefined) await this.flushing;
    if (this.imm !== undefined) {
      // An earlier flush failed: retry it once here.
      this.startFlush();
      await this.flushing;
    }
    if (this.imm === undefined && this.mem.entries > 0) {
      await this.rotate();
      while (this.flushing !== undefined) await this.flushing;
    }
    if (this.imm !== undefined) throw asIoError(this.flushError, 'Cannot flush the memtable');
    // Take the compaction slot so background compaction does not interleave.
    while (this.compacting !== undefined) await this.compacting;
    let release!: () => void;
    this.compacting = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      let target = 1;
      for (let l = 1; l < this.levels.length; l++) if ((this.levels[l] as Table[]).length > 0) target = l;
      for (let level = 0; level < target; level++) {
        const pick = pickForLevel(this.levels, level, this.pointers, true);
        if (pick !== undefined) await this.runCompaction(pick);
      }
      // A final pass over the bottom level drops the deletions that are left there.
      const bottom = this.levels[target] as Table[];
      if (bottom.some((t) => t.meta.tombstones > 0)) {
        // Inputs from `target` rewritten into `target` (output level = level + 1).
        await this.runCompaction({ level: target - 1, inputs: [...bottom], overlaps: [] }, true);
      }
    } finally {
      this.compacting = undefined;
      release();
      this.wakeCompactionWaiters();
    }
  }

  // ------------------------------------------------------------------ stats and close

  stats(): EngineStats {
    const c = this.counters;
    const perLevelFiles: Record<string, number> = {};
    const perLevelBytes: Record<string, number> = {};
    let tableBytes = 0;
    let tableEntries = 0;
    let tombstones = 0;
    let lastLevelBytes = 0;
    this.levels.forEach((tables, level) => {
      const bytes = levelBytes(tables);
      perLevelFiles[`L${level}`] = tables.length;
      perLevelBytes[`L${level}`] = bytes;
      tableBytes += bytes;
      if (bytes > 0) lastLevelBytes = bytes;
      for (const t of tables) {
        tableEntries += t.meta.entries - t.meta.tombstones;
        tombstones += t.meta.tombstones;
      }
    });
    const memEntries = this.mem.entries + (this.imm?.entries ?? 0);
    const sstWritten = c.flushBytesWritten + c.compactionBytesWritten;
    return {
      approximateKeys: tableEntries + memEntries,
      memtableBytes: this.mem.bytes,
      memtableLoggedBytes: this.mem.logged,
      immutableMemtableBytes: this.imm?.bytes ?? 0,
      tableFiles: this.levels.reduce((n, l) => n + l.length, 0),
      tableBytes,
      tombstones,
      filesPerLevel: perLevelFiles,
      bytesPerLevel: perLevelBytes,
      userBytesWritten: c.userBytesWritten,
      walBytesWritten: c.walBytesWritten,
      flushBytesWritten: c.flushBytesWritten,
      compactionBytesRead: c.compactionBytesRead,
      compactionBytesWritten: c.compactionBytesWritten,
      // Bytes written to SSTables per byte flushed (the LSM's own rewriting).
      writeAmplification: c.flushBytesWritten === 0 ? 0 : sstWritten / c.flushBytesWritten,
      // Everything written to disk (WAL + SSTables) per byte of user data.
      totalWriteAmplification: c.userBytesWritten === 0 ? 0 : (c.walBytesWritten + sstWritten) / c.userBytesWritten,
      // Table bytes per byte in the last level (≈ the live data once compacted).
      spaceAmplification: lastLevelBytes === 0 ? 0 : tableBytes / lastLevelBytes,
      flushes: c.flushes,
      compactions: c.compactions,
      trivialMoves: c.trivialMoves,
      tombstonesDropped: c.tombstonesDropped,
      compactionFilterDrops: c.compactionFilterDrops,
      writeStalls: c.stalls,
      writes: c.writes,
      gets: c.gets,
      fsyncs: c.fsyncs,
      groupCommits: c.groupCommits,
      blockCacheBytes: this.blockCache.usedBytes,
      blockCacheHits: this.blockCache.hits,
      blockCacheMisses: this.blockCache.misses,
      blockCacheHitRatio: this.blockCache.hitRatio(),
      rowCacheEntries: this.rowCache.entries,
      rowCacheBytes: this.rowCache.usedBytes,
      rowCacheHits: this.rowCache.hits,
      rowCacheMisses: this.rowCache.misses,
      rowCacheHitRatio: this.rowCache.hitRatio(),
      rowCacheAdmissions: this.rowCache.admissions,
      rowCacheRefusals: this.rowCache.refusals,
      rowCacheEvictions: this.rowCache.evictions,
    };
  }

  /** Makes every write so far durable (for sync `none`/`interval` callers that need a barrier). */
  async sync(): Promise<void> {
    this.checkOpen();
    this.endLinger();
    while (this.committing) await yieldToLoop();
    if (this.walDirty) await this.repairWal();
    this.appendWalBuffer();
    await this.wal.sync();
    this.counters.fsyncs++;
  }

  private armSyncTimer(): void {
    this.syncTimer = this.clock.setTimer(this.options.syncIntervalMs, () => {
      if (this.closed || this.closing) return;
      try {
        this.appendWalBuffer();
      } catch (error) {
        this.log.warn('Cannot append buffered WAL records; the next write retries', { error: String(error) });
      }
      this.wal.sync().then(
        () => {
          this.counters.fsyncs++;
        },
        (error: unknown) => this.log.warn('Cannot sync the WAL', { error: String(error) }),
      );
      this.armSyncTimer();
    });
  }

  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.walTimer?.cancel();
    this.syncTimer?.cancel();
    this.endLinger();
    while (this.committing) await yieldToLoop();
    await this.room?.catch(() => undefined);
    await this.flushing;
    await this.compacting?.catch(() => undefined);
    await this.manifestLock;
    // An unused next WAL stays on disk (empty: the next open replays nothing from it and removes it).
    const next = await this.nextWal;
    this.nextWal = undefined;
    await next?.file.close().catch(() => undefined);
    let failure: unknown;
    try {
      if (this.walDirty) await this.repairWal();
      this.appendWalBuffer();
      await this.wal.sync();
    } catch (error) {
      failure = error;
    }
    this.closed = true;
    await this.wal.close().catch(() => undefined);
    for (const level of this.levels) for (const t of level) await t.close().catch(() => undefined);
    this.blockCache.clear();
    this.rowCache.clear();
    if (failure !== undefined) throw asIoError(failure, 'Cannot make the WAL durable while closing');
  }
}

/** Opens the LSM engine in `dir` (created when missing). */
export function openLsm(dir: string, options: Partial<LsmOptions>, env: LsmEnv): Promise<LsmEngine> {
  return LsmEngine.open(dir, options, env);
}
