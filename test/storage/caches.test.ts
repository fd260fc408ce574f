/**
 * The read-path caches: block buffers recycled by the block cache never
 * change under a scan, the row cache serves hot keys and never a stale row, the memtable presence
 * filter never hides a key, and the caches stay within their byte budgets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmEngine } from '../../src/storage/index.ts';
import { BlockCache, newBlockSlots } from '../../src/storage/block-cache.ts';
import { Block, BlockBuilder, kindPut } from '../../src/storage/block.ts';

const env = () => ({ fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(6, '0')}`);
const value = (i: number, round = 0): Uint8Array => utf8(`value:${i}:${round}:${'x'.repeat(40 + (i % 50))}`);

async function filled(count: number, options: Parameters<typeof openLsm>[1]): Promise<LsmEngine> {
  const db = await openLsm('/db', options, env());
  for (let i = 0; i < count; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 100); j++) batch.push({ type: 'put' as const, key: key(j), value: value(j) });
    await db.write(batch);
  }
  await db.compact();
  return db;
}

test('gets that churn a tiny block cache do not corrupt a scan running at the same time', async () => {
  const count = 6000;
  // A few blocks of cache: nearly every get evicts (and recycles) a block.
  const db = await filled(count, { memtableBytes: 64 * 1024, blockBytes: 512, blockCacheBytes: 8 * 1024, rowCacheBytes: 0, compression: 'none' });
  let seen = 0;
  let probe = 7;
  for await (const entry of db.iterate()) {
    assert.deepEqual(entry.key, Buffer.from(key(seen)));
    assert.deepEqual(entry.value, Buffer.from(value(seen)));
    seen++;
    // A get just ahead of the scan puts the block the scan reaches next into
    // the cache (so the scan takes it from there); random gets then evict it.
    const ahead = Math.min(count - 1, seen + 3);
    assert.deepEqual((await db.get(key(ahead)))?.value, Buffer.from(value(ahead)));
    for (let g = 0; g < 3; g++) {
      probe = (probe * 1103515245 + 12345) % count;
      const got = await db.get(key(probe));
      assert.deepEqual(got?.value, Buffer.from(value(probe)), `get ${probe} during the scan`);
    }
  }
  assert.equal(seen, count);
  const stats = db.stats();
  assert.ok((stats.blockCacheMisses as number) > count, `the cache churned (${stats.blockCacheMisses} misses)`);
  assert.ok((stats.blockCacheBytes as number) <= 8 * 1024, `block cache holds ${stats.blockCacheBytes} bytes, budget 8192`);
  await db.close();
});

test('a hot key in SSTables is served by the row cache, whether its block came from the file or the block cache', async () => {
  const count = 4000;
  for (const blockCacheBytes of [8 * 1024, 1 << 20]) {
    const db = await filled(count, { memtableBytes: 64 * 1024, rowCacheBytes: 64 * 1024, blockCacheBytes, blockBytes: 512 });
    const hot = key(1234);
    // The first read marks the key in the doorkeeper, the second admits its row.
    assert.deepEqual((await db.get(hot))?.value, Buffer.from(value(1234)));
    assert.deepEqual((await db.get(hot))?.value, Buffer.from(value(1234)));
    const before = db.stats().rowCacheHits as number;
    assert.deepEqual((await db.get(hot))?.value, Buffer.from(value(1234)));
    assert.deepEqual(db.getNowView(hot)?.value, Buffer.from(value(1234)));
    assert.equal((db.stats().rowCacheHits as number) - before, 2, `block cache of ${blockCacheBytes} bytes: the third and fourth reads are row-cache hits`);
    // Overwrites and deletes must not be hidden by the cached row, also once flushed and compacted.
    await db.put(hot, utf8('new'));
    assert.deepEqual((await db.get(hot))?.value, Buffer.from('new'));
    await db.compact();
    assert.deepEqual((await db.get(hot))?.value, Buffer.from('new'));
    assert.deepEqual((await db.get(hot))?.value, Buffer.from('new'));
    await db.delete(hot);
    await db.compact();
    assert.equal(await db.get(hot), undefined);
    for (let i = 0; i < count; i++) assert.deepEqual((await db.get(key(i)))?.value, i === 1234 ? undefined : Buffer.from(value(i)));
    await db.close();
  }
});

test('uniformly random reads over more keys than the row cache holds do not churn it', async () => {
  const count = 4000;
  // ~140 rows of 100 bytes fit in 16 KiB; everything else is in the block cache.
  const db = await filled(count, { memtableBytes: 64 * 1024, rowCacheBytes: 16 * 1024 });
  let x = 99;
  const next = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % count;
  };
  for (let i = 0; i < 20_000; i++) await db.get(key(next()));
  const before = db.stats();
  const reads = 20_000;
  for (let i = 0; i < reads; i++) {
    const k = next();
    assert.deepEqual((await db.get(key(k)))?.value, Buffer.from(value(k)));
  }
  const after = db.stats();
  const admitted = (after.rowCacheAdmissions as number) - (before.rowCacheAdmissions as number);
  assert.ok((before.rowCacheEntries as number) > 50, `the cache filled (${before.rowCacheEntries} rows)`);
  assert.ok(admitted < reads / 50, `${admitted} admissions in ${reads} uniform reads`);
  assert.ok((after.rowCacheBytes as number) <= 16 * 1024);
  await db.close();
});

test('a row the compaction filter drops leaves the row cache', async () => {
  const purge = utf8('purge');
  // The filter starts dropping once the row is cached (as a tombstone's grace period ends).
  let dropping = false;
  const db = await openLsm('/db', {
    memtableBytes: 32 * 1024, compactionFilter: (_k, _v, meta) => (dropping && meta !== undefined && Buffer.from(meta).equals(purge) ? 'drop' : 'keep'),
  }, env());
  for (let i = 0; i < 2000; i++) await db.put(key(i), value(i), i === 7 ? purge : undefined);
  await db.compact();
  // Read three times: cached by the second, a hit on the third.
  for (let r = 0; r < 3; r++) assert.deepEqual((await db.get(key(7)))?.value, Buffer.from(value(7)));
  assert.ok((db.stats().rowCacheHits as number) >= 1);
  // New tables overlapping the old ones: the next compaction rewrites (and filters) key 7.
  dropping = true;
  for (let i = 0; i < 2000; i += 2) await db.put(key(i), value(i, 1), i === 7 ? purge : undefined);
  await db.compact();
  assert.equal(db.stats().compactionFilterDrops, 1);
  assert.equal(await db.get(key(7)), undefined);
  await db.close();
});

test('the memtable presence filter never hides a key, deleted or overwritten ones included', async () => {
  const db = await openLsm('/db', { memtableBytes: 1024 * 1024 }, env());
  for (let i = 0; i < 3000; i++) await db.put(key(i), value(i));
  for (let i = 0; i < 3000; i += 3) await db.delete(key(i));
  for (let i = 1; i < 3000; i += 3) await db.put(key(i), value(i, 1));
  for (let i = 0; i < 3000; i++) {
    const got = await db.get(key(i));
    if (i % 3 === 0) assert.equal(got, undefined);
    else assert.deepEqual(got?.value, Buffer.from(value(i, i % 3 === 1 ? 1 : 0)));
  }
  assert.equal(await db.get(utf8('absent')), undefined);
  await db.close();
});

test('block cache: per-table slots, second-chance eviction by charged bytes, recycled blocks, clear empties the tables', () => {
  const blockOf = (n: number): Block => {
    const builder = new BlockBuilder(256);
    builder.add(Buffer.from(`k${n}`), kindPut, Buffer.from(`v${n}`), undefined);
    return new Block(builder.finish(), 't.sst', n);
  };
  const blocks = Array.from({ length: 4 }, (_, n) => blockOf(n));
  const charge = BlockCache.charge(blocks[0] as Block);
  const cache = new BlockCache(3 * charge);
  const a = newBlockSlots(2);
  const b = newBlockSlots(2);
  cache.set(a, 0, blocks[0] as Block, charge);
  cache.set(a, 1, blocks[1] as Block, charge);
  cache.set(b, 0, blocks[2] as Block, charge);
  // The same block number in two tables is two entries.
  assert.equal(cache.get(a, 0), blocks[0]);
  assert.equal(cache.get(b, 0), blocks[2]);
  assert.equal(cache.get(b, 1), undefined);
  // a[0] and b[0] were read since they were queued, a[1] was not: adding a fourth block evicts a[1], and its block becomes a spare.
  cache.set(b, 1, blocks[3] as Block, charge);
  assert.equal(cache.size, 3);
  assert.equal(cache.get(a, 1), undefined);
  assert.equal(a[1], undefined);
  assert.equal(cache.takeSpare(1), blocks[1]);
  assert.equal(cache.takeSpare(1), undefined);
  // Queue now: b[0] (read), a[0] (its second chance used), b[1]. The next block evicts b[1], the oldest unread one;
  // b[1]'s block is lent (a cursor holds views into it), so it is never recycled.
  (blocks[3] as Block).lent = true;
  cache.set(a, 1, blockOf(9), charge);
  assert.equal(cache.get(b, 1), undefined);
  assert.equal(cache.get(a, 0), blocks[0]);
  assert.equal(cache.get(b, 0), blocks[2]);
  assert.equal(cache.takeSpare(1), undefined);
  assert.equal(cache.usedBytes, 3 * charge);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.ok(a.every((s) => s === undefined) && b.every((s) => s === undefined));
});
