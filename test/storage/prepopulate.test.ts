/**
 * Block-cache prepopulation on flush (LsmOptions.prepopulateBlockCacheOnFlush):
 * the blocks a flush writes are cached decoded, byte for byte what a read of
 * the file would cache; reads right after a flush hit the cache; the cache
 * stays within its budget; a failed flush leaves no blocks behind; a crash
 * during or after a flush loses nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoError, MemoryFileSystem, RealClock, SeededRandom, silentLogger, utf8 } from '../../src/core/index.ts';
import type { AppendFile, FileSystem, OpenAppendOptions } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmEngine, LsmOptions } from '../../src/storage/index.ts';
import { BlockCache } from '../../src/storage/block-cache.ts';
import { Table, TableBuilder } from '../../src/storage/sstable.ts';
import { FencedFileSystem, ForwardingFileSystem, withSync } from './helpers.ts';

const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(6, '0')}`);
const value = (i: number, round = 0): Uint8Array => utf8(`value:${i}:${round}:${'x'.repeat(40 + (i % 50))}`);
const env = (fs: FileSystem) => ({ fs, clock: new RealClock(), log: silentLogger });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const small: Partial<LsmOptions> = { memtableBytes: 64 * 1024, blockBytes: 1024, rowCacheBytes: 0, level0CompactionFiles: 8 };

/** Puts keys [from, to) one by one and returns once `flushes` flushes have finished. */
async function putUntilFlushed(db: LsmEngine, from: number, to: number, flushes: number, round = 0): Promise<void> {
  // A read between the puts: flushes prepopulate the cache only for an engine that serves reads.
  for (let i = from; i < to; i++) {
    await db.put(key(i), value(i, round));
    if (i % 100 === 0) await db.get(key(i));
  }
  for (let spins = 0; (db.stats().flushes as number) < flushes; spins++) {
    assert.ok(spins < 100_000, `flush ${flushes} did not finish`);
    await turn();
  }
}

test('a read right after a flush is served from the block cache, with the right bytes', async () => {
  for (const prepopulate of [true, false]) {
    const db = await openLsm('/db', { ...small, prepopulateBlockCacheOnFlush: prepopulate }, env(new MemoryFileSystem()));
    // Puts until the first memtable rotates: every key written before is in the flushed table only.
    let written = 0;
    await db.get(key(0));
    while (db.stats().immutableMemtableBytes === 0 && db.stats().flushes === 0) await db.put(key(written), value(written++));
    await putUntilFlushed(db, written, written, 1);
    const before = db.stats();
    assert.equal(before.tableFiles, 1);
    const reads = written - 1;
    assert.ok(reads > 100, `${reads} keys flushed`);
    for (let i = 0; i < reads; i++) assert.deepEqual((await db.get(key(i)))?.value, Buffer.from(value(i)), `key ${i}`);
    const after = db.stats();
    const misses = (after.blockCacheMisses as number) - (before.blockCacheMisses as number);
    const hits = (after.blockCacheHits as number) - (before.blockCacheHits as number);
    if (prepopulate) {
      assert.equal(misses, 0, 'no read of the flushed table missed the cache');
      assert.equal(hits, reads);
      assert.ok((before.blockCacheBytes as number) > 0, 'the flush filled the cache');
    } else {
      assert.ok(misses > 0, `without prepopulation the first reads miss (${misses} misses)`);
      assert.equal(before.blockCacheBytes, 0);
    }
    await db.close();
  }
});

test('prepopulated blocks are byte for byte the blocks a read of the file decodes (lz4 and stored)', async () => {
  const fs = new MemoryFileSystem();
  for (const compression of ['lz4', 'none'] as const) {
    const path = `/t-${compression}.sst`;
    const warm = new BlockCache(1 << 20);
    const builder = await TableBuilder.create(fs, path, 1, { blockBytes: 512, bloomBitsPerKey: 10, compression }, undefined, warm);
    const count = 2000;
    for (let i = 0; i < count; i++) {
      const v = value(i);
      builder.add(key(i), 1, v, undefined);
      await builder.drain();
    }
    const meta = await builder.finish();
    const cached = await Table.open(fs, path, meta, warm, builder.cacheSlots);
    const cold = await Table.open(fs, path, meta, new BlockCache(1 << 20));
    assert.ok(cached.blockCount > 10);
    assert.equal(warm.size, cached.blockCount, 'every data block was cached');
    for (let i = 0; i < cached.blockCount; i++) {
      const a = cached.block(i);
      const b = cold.block(i);
      assert.deepEqual(a.buf.subarray(0, a.byteLength), b.buf.subarray(0, b.byteLength), `block ${i} (${compression})`);
    }
    assert.equal(warm.misses, 0, 'the cached table never read a block from the file');
    await cached.close();
    await cold.close();
  }
});

test('a flush bigger than the block cache stays within its budget and every key reads back', async () => {
  const budget = 16 * 1024;
  const db = await openLsm('/db', { ...small, blockCacheBytes: budget }, env(new MemoryFileSystem()));
  const n = 3000;
  await putUntilFlushed(db, 0, n, 2);
  assert.ok((db.stats().blockCacheBytes as number) <= budget, `block cache holds ${db.stats().blockCacheBytes} bytes, budget ${budget}`);
  for (let i = 0; i < n; i++) assert.deepEqual((await db.get(key(i)))?.value, Buffer.from(value(i)), `key ${i}`);
  assert.ok((db.stats().blockCacheBytes as number) <= budget);
  await db.close();
});

/** Fails the sync of the first SSTable it sees, so that flush is abandoned after all its blocks were built. */
class FailFirstTableSync extends ForwardingFileSystem {
  failed = false;
  override async openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
    const file = await this.inner.openAppend(path, options);
    if (!path.endsWith('.sst') || this.failed) return file;
    const fail = (): Promise<void> => {
      this.failed = true;
      return Promise.reject(new IoError(`Cannot sync ${path}: injected failure`));
    };
    return withSync(file, fail);
  }
}

test('a flush that fails takes its cached blocks out again; the retried flush caches its own', async () => {
  const fs = new FailFirstTableSync(new MemoryFileSystem());
  const db = await openLsm('/db', small, env(fs));
  const n = 3000;
  await db.get(key(0));
  for (let i = 0; i < 700; i++) await db.put(key(i), value(i));
  for (let spins = 0; !fs.failed || db.stats().immutableMemtableBytes === 0; spins++) {
    assert.ok(spins < 100_000, 'the first flush did not fail');
    await turn();
  }
  // Let the failed flush finish its clean-up.
  for (let i = 0; i < 10; i++) await turn();
  assert.equal(db.stats().flushes, 0);
  assert.equal(db.stats().blockCacheBytes, 0, 'the abandoned table left no blocks in the cache');
  await putUntilFlushed(db, 700, n, 1);
  assert.ok((db.stats().blockCacheBytes as number) > 0);
  for (let i = 0; i < n; i++) assert.deepEqual((await db.get(key(i)))?.value, Buffer.from(value(i)), `key ${i}`);
  await db.close();
});

test('a crash during or after prepopulating flushes loses no acknowledged write', async () => {
  const random = new SeededRandom(7);
  for (let round = 0; round < 6; round++) {
    const mem = new MemoryFileSystem();
    const fenced = new FencedFileSystem(mem);
    const db = await openLsm('/db', { ...small, sync: 'always' }, env(fenced));
    const n = 1500 + round * 300;
    const writes: Promise<void>[] = [];
    const acked = new Set<number>();
    for (let i = 0; i < n; i++) {
      writes.push(db.put(key(i), value(i, round)).then(() => void acked.add(i)));
      // Reads among the writes, so that the flushes prepopulate the cache.
      if (i % 50 === 0) writes.push(db.get(key(i)).then(() => undefined));
    }
    // Crash at a point that moves across rounds: before, during and after the flushes.
    const crashAfter = 200 + round * 250;
    for (let spins = 0; acked.size < Math.min(n, crashAfter); spins++) {
      assert.ok(spins < 1_000_000, 'writes stalled');
      await turn();
    }
    fenced.fence();
    mem.crash(random, { tornWrites: true });
    await Promise.allSettled(writes);
    const reopened = await openLsm('/db', small, env(mem));
    for (const i of acked) assert.deepEqual((await reopened.get(key(i)))?.value, Buffer.from(value(i, round)), `round ${round}: acknowledged key ${i}`);
    await reopened.close();
  }
});

test('a flush into a full block cache after a write-only stretch (a bulk load) leaves it alone; reads turn prepopulation back on', async () => {
  // A cache smaller than one flushed table: it never has room for a whole one.
  const db = await openLsm('/db', { ...small, blockCacheBytes: 16 * 1024 }, env(new MemoryFileSystem()));
  for (let i = 0; i < 1500; i++) await db.put(key(i), value(i));
  for (let spins = 0; (db.stats().flushes as number) < 1; spins++) {
    assert.ok(spins < 100_000);
    await turn();
  }
  assert.equal(db.stats().blockCacheBytes, 0, 'no read came and no room: nothing prepopulated');
  const flushes = db.stats().flushes as number;
  await putUntilFlushed(db, 1500, 3000, flushes + 2);
  assert.ok((db.stats().blockCacheBytes as number) > 0, 'reads came: the next flushes prepopulate');
  await db.close();
});

test('a flush into a block cache with room for the table prepopulates it even without reads (a node after its bulk load)', async () => {
  const db = await openLsm('/db', small, env(new MemoryFileSystem()));
  for (let i = 0; i < 1500; i++) await db.put(key(i), value(i));
  for (let spins = 0; (db.stats().flushes as number) < 1; spins++) {
    assert.ok(spins < 100_000);
    await turn();
  }
  assert.ok((db.stats().blockCacheBytes as number) > 0);
  const misses = db.stats().blockCacheMisses as number;
  for (let i = 0; i < 100; i++) assert.deepEqual((await db.get(key(i)))?.value, Buffer.from(value(i)));
  assert.equal(db.stats().blockCacheMisses, misses, 'the first reads after the load hit the cache');
  await db.close();
});
