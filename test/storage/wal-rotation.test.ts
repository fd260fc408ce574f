/**
 * The next memtable's WAL is created (and made durable) ahead of the
 * rotation, once the memtable is half full, so the rotation that every
 * writer waits for opens no file and syncs no directory; writes after it go
 * to that file and survive a reopen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmOptions, SyncMode } from '../../src/storage/index.ts';
import { CountingFileSystem } from './helpers.ts';

const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(6, '0')}`);
const value = (i: number): Uint8Array => utf8(`value:${i}:${'y'.repeat(60)}`);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const options: Partial<LsmOptions> = { memtableBytes: 64 * 1024, rowCacheBytes: 0 };

for (const sync of ['always', 'interval', 'none'] as SyncMode[]) {
  test(`sync ${sync}: the rotation uses the WAL created ahead of it; every write reads back after a reopen`, async () => {
    const mem = new MemoryFileSystem();
    const fs = new CountingFileSystem(mem);
    const db = await openLsm('/db', { ...options, sync }, { fs, clock: new RealClock(), log: silentLogger });
    const logsAtOpen = fs.appendOpens.filter((p) => p.endsWith('.log')).length;
    let i = 0;
    // Half a memtable: the next WAL is created in the background.
    while ((db.stats().memtableBytes as number) < (options.memtableBytes as number) * 0.6) await db.put(key(i), value(i++));
    for (let spins = 0; fs.appendOpens.filter((p) => p.endsWith('.log')).length === logsAtOpen; spins++) {
      assert.ok(spins < 1000, 'no WAL was created ahead of the rotation');
      await turn();
    }
    for (let k = 0; k < 20; k++) await turn();
    const opensBefore = fs.appendOpens.filter((p) => p.endsWith('.log')).length;
    const dirSyncsBefore = fs.dirSyncs;
    // Up to the rotation (an immutable memtable appears).
    while ((db.stats().immutableMemtableBytes as number) === 0 && (db.stats().flushes as number) === 0) await db.put(key(i), value(i++));
    assert.equal(fs.appendOpens.filter((p) => p.endsWith('.log')).length, opensBefore, 'the rotation opened no WAL of its own');
    assert.equal(fs.dirSyncs, dirSyncsBefore, 'the rotation synced no directory');
    const total = i + 200;
    while (i < total) await db.put(key(i), value(i++));
    await db.close();
    const reopened = await openLsm('/db', options, { fs: mem, clock: new RealClock(), log: silentLogger });
    for (let k = 0; k < total; k++) assert.deepEqual((await reopened.get(key(k)))?.value, Buffer.from(value(k)), `key ${k}`);
    await reopened.close();
    // The unused WAL a close leaves behind is gone after the next open.
    const logs = (await mem.list('/db')).filter((n) => n.endsWith('.log'));
    assert.equal(logs.length, 1, `one WAL left: ${logs.join(', ')}`);
  });
}
