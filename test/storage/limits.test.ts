/** Bad input and bad disks: oversized keys/values/metadata, a full disk, invalid options. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, IoError, MemoryFileSystem, RealClock, SeededRandom, silentLogger, toHex, utf8, fromUtf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmOptions, SyncMode } from '../../src/storage/index.ts';

const env = (fs: MemoryFileSystem) => ({ fs, clock: new RealClock(), log: silentLogger });

test('oversized keys, values and metadata are refused with both sizes in the message, and nothing of the batch is written', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { maxKeyBytes: 100, maxValueBytes: 1000, maxMetaBytes: 10 }, env(fs));
  try {
    await assert.rejects(db.put(new Uint8Array(101), utf8('v')), (e: unknown) =>
      e instanceof InvalidArgumentError && /as it is 101 bytes: the limit is 100 \(maxKeyBytes\)/.test(e.message));
    await assert.rejects(db.put(utf8('k'), new Uint8Array(1001)), (e: unknown) =>
      e instanceof InvalidArgumentError && /value is 1001 bytes: the limit is 1000 \(maxValueBytes\)/.test(e.message));
    await assert.rejects(db.put(utf8('k'), utf8('v'), new Uint8Array(11)), (e: unknown) =>
      e instanceof InvalidArgumentError && /metadata is 11 bytes: the limit is 10/.test(e.message));
    await assert.rejects(db.write([
      { type: 'put', key: utf8('ok'), value: utf8('fine') },
      { type: 'put', key: utf8('big'), value: new Uint8Array(1001) },
    ]), InvalidArgumentError);
    assert.equal(await db.get(utf8('ok')), undefined);
    // Exactly at the limits is fine.
    await db.put(new Uint8Array(100), new Uint8Array(1000), new Uint8Array(10));
    assert.equal((await db.get(new Uint8Array(100)))?.value.length, 1000);
  } finally {
    await db.close();
  }
});

test('the default limits: 64 KiB keys and 16 MiB values', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', {}, env(fs));
  try {
    await assert.rejects(db.put(new Uint8Array(64 * 1024 + 1), utf8('v')), InvalidArgumentError);
    await assert.rejects(db.put(utf8('k'), new Uint8Array(16 * 1024 * 1024 + 1)), InvalidArgumentError);
  } finally {
    await db.close();
  }
});

test('invalid options are refused with the option name', async () => {
  const fs = new MemoryFileSystem();
  await assert.rejects(openLsm('/db', { memtableBytes: 10 }, env(fs)), (e: unknown) => e instanceof InvalidArgumentError && /memtableBytes/.test(e.message));
  await assert.rejects(openLsm('/db', { sync: 'sometimes' as SyncMode }, env(fs)), (e: unknown) => e instanceof InvalidArgumentError && /sync/.test(e.message));
});

for (const sync of ['always', 'none'] as const) {
  test(`disk full (sync ${sync}): writes fail with IoError, reads keep working, writes resume once space is freed`, async () => {
    const fs = new MemoryFileSystem();
    const options: Partial<LsmOptions> = { sync, memtableBytes: 16 * 1024, walBufferBytes: 1024, targetFileBytes: 16 * 1024, level1Bytes: 64 * 1024 };
    const db = await openLsm('/db', options, env(fs));
    const acked = new Map<string, string>();
    let failure: unknown;
    fs.capacityBytes = 200 * 1024;
    const random = new SeededRandom(sync === 'always' ? 1 : 2);
    for (let i = 0; i < 20_000 && failure === undefined; i++) {
      const k = `key-${i % 3000}`;
      const v = `value-${i}-${toHex(random.bytes(30))}`;
      try {
        await db.put(utf8(k), utf8(v));
        acked.set(k, v);
      } catch (error) {
        failure = error;
      }
    }
    assert.ok(failure instanceof IoError, `expected IoError, got ${String(failure)}`);
    assert.match(failure.message, /ENOSPC|disk is full/);
    // While the disk stays full, further writes keep failing the same clean way
    // (one may still fit in space a failed flush gave back).
    let failures = 0;
    for (let i = 0; i < 50; i++) {
      const v = toHex(random.bytes(1000));
      try {
        await db.put(utf8(`more-${i}`), utf8(v));
        acked.set(`more-${i}`, v);
      } catch (error) {
        assert.ok(error instanceof IoError, `expected IoError, got ${String(error)}`);
        failures++;
      }
    }
    assert.ok(failures >= 25, `${failures} of 50 writes failed on a full disk`);
    for (const [k, v] of acked) assert.equal(fromUtf8((await db.get(utf8(k)))?.value ?? new Uint8Array()), v, `${k} unreadable while the disk is full`);
    let scanned = 0;
    for await (const _ of db.iterate()) scanned++;
    assert.ok(scanned >= acked.size);
    // Free space: writing works again, and everything survives a reopen.
    fs.capacityBytes = Infinity;
    await db.put(utf8('after'), utf8('space freed'));
    acked.set('after', 'space freed');
    await db.close();
    const again = await openLsm('/db', options, env(fs));
    try {
      for (const [k, v] of acked) assert.equal(fromUtf8((await again.get(utf8(k)))?.value ?? new Uint8Array()), v, `${k} lost after reopen`);
    } finally {
      await again.close();
    }
  });
}
