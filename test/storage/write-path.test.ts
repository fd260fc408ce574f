/**
 * The allocation-light write and table-building paths: a put written without
 * a batch, table builders sharing one pool of bloom-hash arrays, blocks
 * written from one reused output buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClosedError, InvalidArgumentError, MemoryFileSystem, RealClock, silentLogger, utf8, fromUtf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import { BlockCache } from '../../src/storage/block-cache.ts';
import { kindPut } from '../../src/storage/block.ts';
import { ByteWriter } from '../../src/storage/codec.ts';
import { HashArrayPool, Table, TableBuilder, hashKey } from '../../src/storage/sstable.ts';
import { encodeBatchRecord, encodePutRecord } from '../../src/storage/wal.ts';

const env = (fs: MemoryFileSystem) => ({ fs, clock: new RealClock(), log: silentLogger });

test('a put record has the same bytes as a batch of that one put (with and without metadata)', () => {
  for (const meta of [undefined, utf8('m')]) {
    const a = new ByteWriter(16);
    const b = new ByteWriter(16);
    encodeBatchRecord(a, meta === undefined ? [{ type: 'put', key: utf8('k'), value: utf8('value') }] : [{ type: 'put', key: utf8('k'), value: utf8('value'), meta }]);
    encodePutRecord(b, utf8('k'), utf8('value'), meta);
    assert.deepEqual(b.view(), a.view());
  }
});

test('put without a batch: survives a reopen, rejects bad input and a closed engine with typed errors', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { sync: 'none', maxValueBytes: 100 }, env(fs));
  for (let i = 0; i < 500; i++) await db.put(utf8(`k${i}`), utf8(`v${i}`), i % 2 === 0 ? utf8(`m${i}`) : undefined);
  await assert.rejects(db.put(utf8('big'), new Uint8Array(101)), InvalidArgumentError);
  await assert.rejects(db.put('not bytes' as unknown as Uint8Array, utf8('v')), InvalidArgumentError);
  assert.equal(await db.get(utf8('big')), undefined);
  await db.close();
  await assert.rejects(db.put(utf8('late'), utf8('v')), ClosedError);
  await assert.rejects(db.get(utf8('k1')), ClosedError);
  const again = await openLsm('/db', { sync: 'none', maxValueBytes: 100 }, env(fs));
  for (let i = 0; i < 500; i++) {
    const entry = await again.get(utf8(`k${i}`));
    assert.equal(fromUtf8(entry?.value ?? new Uint8Array()), `v${i}`);
    assert.equal(entry?.meta === undefined ? undefined : fromUtf8(entry.meta), i % 2 === 0 ? `m${i}` : undefined);
  }
  await again.close();
});

test('table builders sharing a hash-array pool: each filter holds exactly its own keys', async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/t');
  const pool = new HashArrayPool();
  const cache = new BlockCache(1 << 20);
  const options = { blockBytes: 256, bloomBitsPerKey: 10, compression: 'lz4' as const };
  // A big table first (its grown arrays go back to the pool), then smaller ones that reuse them.
  const sizes = [5000, 300, 2000, 1];
  const tables: Table[] = [];
  for (const [t, size] of sizes.entries()) {
    const builder = await TableBuilder.create(fs, `/t/${t}.sst`, t + 1, options, pool);
    for (let i = 0; i < size; i++) {
      builder.add(utf8(`t${t}-${String(i).padStart(6, '0')}`), kindPut, utf8(`value ${t}/${i}`), undefined);
      await builder.drain();
    }
    const meta = await builder.finish();
    tables.push(await Table.open(fs, `/t/${t}.sst`, meta, cache));
  }
  for (const [t, size] of sizes.entries()) {
    const table = tables[t] as Table;
    for (let i = 0; i < size; i++) {
      const key = Buffer.from(utf8(`t${t}-${String(i).padStart(6, '0')}`));
      const [h1, h2] = hashKey(key);
      const block = table.get(key, h1, h2);
      assert.ok(block !== undefined, `table ${t} lost key ${i}`);
      assert.equal(fromUtf8(block.buf.subarray(block.valueStart, block.valueEnd)), `value ${t}/${i}`);
    }
    // Keys of the other tables were never added here: a stale hash left in a reused array would show up as hits.
    let falsePositives = 0;
    for (let i = 0; i < 300; i++) {
      const key = Buffer.from(utf8(`t${(t + 1) % sizes.length}-${String(i).padStart(6, '0')}`));
      const [h1, h2] = hashKey(key);
      if (table.filter.mayContain(h1, h2)) falsePositives++;
    }
    assert.ok(falsePositives <= 20, `table ${t}: ${falsePositives} of 300 foreign keys pass its filter`);
    await table.close();
  }
});

test('two table builders open at once on one pool (a flush during a compaction) keep their own hashes', async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/t');
  const pool = new HashArrayPool();
  // Warm the pool with grown arrays, as a finished table leaves them.
  const warm = await TableBuilder.create(fs, '/t/w.sst', 1, { blockBytes: 256, bloomBitsPerKey: 10, compression: 'none' }, pool);
  for (let i = 0; i < 3000; i++) warm.add(utf8(`w${String(i).padStart(5, '0')}`), kindPut, utf8('x'), undefined);
  await warm.finish();
  const options = { blockBytes: 256, bloomBitsPerKey: 10, compression: 'none' as const };
  const a = await TableBuilder.create(fs, '/t/a.sst', 2, options, pool);
  const b = await TableBuilder.create(fs, '/t/b.sst', 3, options, pool);
  for (let i = 0; i < 2000; i++) {
    a.add(utf8(`a${String(i).padStart(5, '0')}`), kindPut, utf8('x'), undefined);
    b.add(utf8(`b${String(i).padStart(5, '0')}`), kindPut, utf8('x'), undefined);
  }
  const cache = new BlockCache(1 << 20);
  const ta = await Table.open(fs, '/t/a.sst', await a.finish(), cache);
  const tb = await Table.open(fs, '/t/b.sst', await b.finish(), cache);
  for (let i = 0; i < 2000; i++) {
    for (const [table, prefix] of [[ta, 'a'], [tb, 'b']] as const) {
      const key = Buffer.from(utf8(`${prefix}${String(i).padStart(5, '0')}`));
      const [h1, h2] = hashKey(key);
      assert.ok(table.filter.mayContain(h1, h2), `table ${prefix} filter lost key ${i}`);
    }
  }
  await ta.close();
  await tb.close();
});

test('group commit: concurrent writers share fdatasyncs in full groups, and no put resolves before an fdatasync issued after it', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { sync: 'always' }, env(fs));
  const writers = 50;
  const rounds = 8;
  let early = 0;
  const start = db.stats().fsyncs as number;
  // A closed loop of writers: what the node's clients look like to the engine.
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        const syncsBefore = fs.stats.syncs;
        await db.put(utf8(`x${w}-${r}`), utf8('v'));
        if (fs.stats.syncs <= syncsBefore) early++;
      }
    }),
  );
  assert.equal(early, 0);
  const fsyncs = (db.stats().fsyncs as number) - start;
  // One group per round; starting a group at the first write of a turn gave groups of 1 and 49 (16 fdatasyncs).
  assert.ok(fsyncs <= rounds + 1, `${writers * rounds} writes took ${fsyncs} fdatasyncs`);
  await db.close();
  const reopened = await openLsm('/db', { sync: 'always' }, env(fs));
  for (let w = 0; w < writers; w++) assert.equal(fromUtf8((await reopened.get(utf8(`x${w}-${rounds - 1}`)))?.value ?? utf8('')), 'v');
  await reopened.close();
});

test('a flush copies keys, values and metadata of every size from the arena, deletions and overwrites included', async () => {
  const db = await openLsm('/db', { memtableBytes: 256 * 1024 }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
  const sizes = [0, 1, 31, 32, 33, 255, 256, 257, 5000, 70_000];
  const valueOf = (i: number, size: number, round: number): Buffer => Buffer.alloc(size, (i * 7 + round) & 0xff);
  const metaOf = (i: number): Buffer | undefined => (i % 3 === 0 ? undefined : Buffer.alloc(i % 50, i & 0xff));
  const keyOf = (i: number): Buffer => Buffer.from(`k${String(i).padStart(4, '0')}${'x'.repeat(i % 40)}`);
  const expected = new Map<number, { value: Buffer; meta: Buffer | undefined } | undefined>();
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 400; i++) {
      const value = valueOf(i, sizes[i % sizes.length] as number, round);
      const meta = metaOf(i);
      await db.put(keyOf(i), value, meta);
      expected.set(i, { value, meta });
    }
  }
  for (let i = 0; i < 400; i += 7) {
    await db.delete(keyOf(i));
    expected.set(i, undefined);
  }
  await db.compact();
  for (const [i, want] of expected) {
    const got = await db.get(keyOf(i));
    assert.deepEqual(got === undefined ? undefined : { value: Buffer.from(got.value), meta: got.meta && Buffer.from(got.meta) }, want, `key ${i}`);
  }
  assert.ok((db.stats().flushes as number) >= 2);
  await db.close();
});
