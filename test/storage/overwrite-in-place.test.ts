/**
 * The engine over a memtable that overwrites in place: a working set
 * written again and again still rotates and flushes by the bytes written
 * (so the WAL a restart replays stays bounded), copies handed out stay
 * unchanged, and a restart reads the newest values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, silentLogger } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';

const env = (fs: MemoryFileSystem) => ({ fs, clock: new RealClock(), log: silentLogger });
const key = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(4, '0')}`);
const value = (round: number, i: number): Buffer => Buffer.alloc(100, (round * 13 + i) & 0xff);

test('overwriting a small working set flushes by the bytes written, not by memory, and a restart reads the newest values', async () => {
  const fs = new MemoryFileSystem();
  const budget = 64 * 1024;
  const db = await openLsm('/db', { memtableBytes: budget }, env(fs));
  const keys = 50;
  const rounds = 100;
  let maxMemory = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys; i++) await db.put(key(i), value(round, i));
    maxMemory = Math.max(maxMemory, db.stats().memtableBytes as number);
  }
  const stats = db.stats();
  // 100 rounds × 50 keys × ~108 bytes ≈ 540 KB written through memtables of 64 KiB.
  assert.ok((stats.flushes as number) >= 5, `flushes: ${stats.flushes}`);
  assert.ok(maxMemory < budget, `the memtable's memory stayed under its budget (${maxMemory})`);
  assert.ok((stats.memtableLoggedBytes as number) < budget + 200, 'no memtable took more than its budget of writes');
  for (let i = 0; i < keys; i++) assert.deepEqual((await db.get(key(i)))?.value, value(rounds - 1, i));
  await db.close();
  const reopened = await openLsm('/db', { memtableBytes: budget }, env(fs));
  for (let i = 0; i < keys; i++) assert.deepEqual((await reopened.get(key(i)))?.value, value(rounds - 1, i));
  await reopened.close();
});

test('a copy from get or getNow is not changed by a later overwrite of its key', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', {}, env(fs));
  await db.put(key(1), value(0, 1), Buffer.from('m0'));
  const viaGet = await db.get(key(1));
  const viaGetNow = db.getNow?.(key(1));
  await db.put(key(1), value(1, 1), Buffer.from('m1'));
  assert.deepEqual(viaGet?.value, value(0, 1));
  assert.deepEqual(viaGet?.meta, Buffer.from('m0'));
  assert.deepEqual(viaGetNow?.value, value(0, 1));
  assert.deepEqual(viaGetNow?.meta, Buffer.from('m0'));
  assert.deepEqual(db.getNowView?.(key(1))?.value, value(1, 1));
  await db.close();
});
