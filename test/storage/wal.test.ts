/** WAL behaviour: group commit, sync modes, and writes that go on while a memtable flushes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFileSystem, RealClock, RealFileSystem, silentLogger, utf8, fromUtf8 } from '../../src/core/index.ts';
import type { AppendFile, FileSystem, OpenAppendOptions } from '../../src/core/index.ts';
import { ForwardingFileSystem } from './helpers.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmOptions } from '../../src/storage/index.ts';
import { ByteWriter } from '../../src/storage/codec.ts';
import { encodeBatchRecord, replayWal, walHeader } from '../../src/storage/wal.ts';

async function groupCommit(fs: FileSystem, dir: string, options: Partial<LsmOptions> = {}): Promise<{ writes: number; fsyncs: number }> {
  const db = await openLsm(dir, { sync: 'always', ...options }, { fs, clock: new RealClock(), log: silentLogger });
  const writers = 64;
  const perWriter = 20;
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; i < perWriter; i++) await db.put(utf8(`w${w}-${i}`), utf8(`value-${i}`));
  }));
  const stats = db.stats();
  for (let w = 0; w < writers; w += 7) assert.equal(fromUtf8((await db.get(utf8(`w${w}-${perWriter - 1}`)))?.value ?? new Uint8Array()), `value-${perWriter - 1}`);
  await db.close();
  return { writes: stats.writes as number, fsyncs: stats.fsyncs as number };
}

test('group commit: 64 concurrent writers with sync always share fsyncs (memory file system)', async () => {
  const { writes, fsyncs } = await groupCommit(new MemoryFileSystem(), '/db');
  assert.equal(writes, 64 * 20);
  assert.ok(fsyncs * 10 <= writes, `${fsyncs} fsyncs for ${writes} writes`);
});

test('group commit on the real file system: fdatasync count well below write count', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-wal-'));
  try {
    const { writes, fsyncs } = await groupCommit(new RealFileSystem(), dir);
    assert.ok(fsyncs * 4 <= writes, `${fsyncs} fsyncs for ${writes} writes`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('syncOnLoop: the fdatasync on the event loop still commits groups, and every write survives a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-wal-'));
  try {
    const fs = new RealFileSystem();
    const { writes, fsyncs } = await groupCommit(fs, dir, { syncOnLoop: true });
    assert.ok(fsyncs * 4 <= writes, `${fsyncs} fsyncs for ${writes} writes`);
    const db = await openLsm(dir, { sync: 'always', syncOnLoop: true }, { fs, clock: new RealClock(), log: silentLogger });
    for (let w = 0; w < 64; w += 9) assert.equal(fromUtf8((await db.get(utf8(`w${w}-19`)))?.value ?? new Uint8Array()), 'value-19');
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sync interval: writes are acknowledged before fsync, and the timer syncs them', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { sync: 'interval', syncIntervalMs: 5 }, { fs, clock: new RealClock(), log: silentLogger });
  try {
    const syncsBefore = fs.stats.syncs;
    for (let i = 0; i < 100; i++) await db.put(utf8(`k${i}`), utf8('v'));
    assert.equal(fs.stats.syncs, syncsBefore, 'no fsync per write');
    await new Promise((r) => setTimeout(r, 40));
    assert.ok(fs.stats.syncs > syncsBefore, 'the interval timer synced the WAL');
    assert.ok((db.stats().fsyncs as number) >= 1);
  } finally {
    await db.close();
  }
});

test('sync none: no fsync and no I/O per write; close makes everything durable', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { sync: 'none', walBufferBytes: 64 * 1024 }, { fs, clock: new RealClock(), log: silentLogger });
  const appendsBefore = fs.stats.appends;
  const syncsBefore = fs.stats.syncs;
  for (let i = 0; i < 200; i++) await db.put(utf8(`k${i}`), utf8('v'));
  assert.equal(fs.stats.syncs, syncsBefore);
  assert.ok(fs.stats.appends - appendsBefore <= 2, `${fs.stats.appends - appendsBefore} appends for 200 writes`);
  await db.close();
  const again = await openLsm('/db', {}, { fs, clock: new RealClock(), log: silentLogger });
  assert.equal(fromUtf8((await again.get(utf8('k199')))?.value ?? new Uint8Array()), 'v');
  await again.close();
});

test('writes go on while the immutable memtable flushes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-flush-'));
  const db = await openLsm(dir, { memtableBytes: 256 * 1024 }, { fs: new RealFileSystem(), clock: new RealClock(), log: silentLogger });
  try {
    let writesDuringFlush = 0;
    for (let i = 0; i < 6_000; i++) {
      await db.put(utf8(`key-${i}`), new Uint8Array(100).fill(i & 0xff));
      if ((db.stats().immutableMemtableBytes as number) > 0) writesDuringFlush++;
      // Let the flush run between writes, as a server's event loop would.
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok((db.stats().flushes as number) >= 2);
    assert.ok(writesDuringFlush > 100, `${writesDuringFlush} writes while a flush ran`);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replayWal decodes batches and reports a torn tail', () => {
  const w = new ByteWriter();
  w.bytes(walHeader());
  encodeBatchRecord(w, [{ type: 'put', key: utf8('a'), value: utf8('1'), meta: utf8('m') }, { type: 'delete', key: utf8('b') }]);
  const whole = w.length;
  encodeBatchRecord(w, [{ type: 'put', key: utf8('c'), value: utf8('3') }]);
  const full = Buffer.from(w.view());
  const ok = replayWal(full, 'x.log');
  assert.equal(ok.batches.length, 2);
  assert.equal(ok.tornTail, false);
  const torn = replayWal(full.subarray(0, full.length - 3), 'x.log');
  assert.equal(torn.batches.length, 1);
  assert.equal(torn.tornTail, true);
  assert.equal(torn.validBytes, whole);
  const op = torn.batches[0]?.[0];
  assert.ok(op?.type === 'put' && fromUtf8(op.meta ?? new Uint8Array()) === 'm');
});

test('replayWal takes a tail of zeros (a preallocated log) as the end, not as damage', () => {
  const w = new ByteWriter();
  w.bytes(walHeader());
  encodeBatchRecord(w, [{ type: 'put', key: utf8('a'), value: utf8('1') }]);
  const end = w.length;
  encodeBatchRecord(w, [{ type: 'put', key: utf8('b'), value: utf8('2') }]);
  const records = Buffer.from(w.view());
  // Longer than the 64 KiB run the zero check compares at a time.
  const padded = Buffer.concat([records, Buffer.alloc(200_000)]);
  const clean = replayWal(padded, 'x.log');
  assert.equal(clean.batches.length, 2);
  assert.equal(clean.tornTail, false);
  assert.equal(clean.validBytes, records.length);
  // A record cut by a crash, zeros after it: a torn tail at that record.
  const cut = Buffer.concat([records.subarray(0, records.length - 2), Buffer.alloc(100_000)]);
  const torn = replayWal(cut, 'x.log');
  assert.equal(torn.batches.length, 1);
  assert.equal(torn.tornTail, true);
  assert.equal(torn.validBytes, end);
  // One nonzero byte far past the last record is not a zero tail (and not a valid record either).
  const stray = Buffer.concat([records, Buffer.alloc(150_000)]);
  stray[records.length + 140_000] = 7;
  assert.equal(replayWal(stray, 'x.log').tornTail, true);
  // Preallocated but the header never written (a crash while the log was created): empty, not corrupt.
  const unborn = replayWal(Buffer.alloc(100_000), 'x.log');
  assert.deepEqual([unborn.batches.length, unborn.validBytes, unborn.tornTail], [0, 0, false]);
  // A bad magic with records after it is still corruption.
  const wrongMagic = Buffer.from(records);
  wrongMagic[0] = 0;
  assert.throws(() => replayWal(wrongMagic, 'x.log'), /bad magic/);
});

test('sync always on the real file system: the WAL is preallocated, and a reopen replays it without a torn-tail repair', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-wal-'));
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (message: string) => void warnings.push(message), child: () => log };
  try {
    const fs = new RealFileSystem();
    const memtableBytes = 256 * 1024;
    const db = await openLsm(dir, { sync: 'always', memtableBytes }, { fs, clock: new RealClock(), log });
    const logs = async (): Promise<string[]> => (await fs.list(dir)).filter((n) => n.endsWith('.log'));
    const [first] = await logs();
    assert.ok(first !== undefined);
    assert.ok(((await fs.size(join(dir, first))) as number) >= memtableBytes, 'the WAL is written full of zeros before use');
    for (let i = 0; i < 200; i++) await db.put(utf8(`k${i}`), utf8(`v${i}`));
    // Not closed: the next open finds the log as a crash leaves it (records, then zeros).
    const again = await openLsm(dir, { sync: 'always', memtableBytes }, { fs, clock: new RealClock(), log });
    for (let i = 0; i < 200; i += 19) assert.equal(fromUtf8((await again.get(utf8(`k${i}`)))?.value ?? new Uint8Array()), `v${i}`);
    assert.deepEqual(warnings.filter((m) => /torn/i.test(m)), []);
    await again.close();
    await db.close().catch(() => undefined);
    // Off, or under sync none, a WAL starts empty.
    for (const options of [{ sync: 'always' as const, walPreallocate: false }, { sync: 'none' as const }]) {
      const sub = join(dir, options.sync + String(options.sync === 'always'));
      const plain = await openLsm(sub, { ...options, memtableBytes }, { fs, clock: new RealClock(), log });
      const names = (await fs.list(sub)).filter((n) => n.endsWith('.log'));
      assert.ok(((await fs.size(join(sub, names[0] as string))) as number) < 1024);
      await plain.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a WAL whose zeros cannot be written (disk too full for them) is opened as a growing file, with a warning', async () => {
  class NoRoomForZeros extends ForwardingFileSystem {
    refused = 0;
    opened: OpenAppendOptions[] = [];
    override openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
      if ((options?.preallocateBytes ?? 0) > 0) {
        this.refused++;
        return Promise.reject(new Error(`ENOSPC: cannot preallocate ${path}`));
      }
      if (path.endsWith('.log')) this.opened.push(options ?? {});
      return super.openAppend(path, options);
    }
  }
  const fs = new NoRoomForZeros(new MemoryFileSystem());
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (message: string) => void warnings.push(message), child: () => log };
  const db = await openLsm('/db', { sync: 'always', memtableBytes: 64 * 1024 }, { fs, clock: new RealClock(), log });
  // Past half the memtable the next WAL is made too, and past the whole of it the rotation takes it.
  for (let i = 0; i < 2000; i++) await db.put(utf8(`k${i}`), utf8(`value-${i}`));
  assert.equal(fromUtf8((await db.get(utf8('k1999')))?.value ?? new Uint8Array()), 'value-1999');
  await db.close();
  assert.ok(fs.refused >= 2, `refused ${fs.refused}`);
  assert.equal(fs.opened.length, fs.refused);
  assert.ok(fs.opened.every((o) => o.preallocateBytes === 0 && o.truncate === true));
  assert.ok(warnings.some((m) => /preallocate/.test(m)));
});
