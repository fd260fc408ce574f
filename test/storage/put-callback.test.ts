/**
 * putCallback (the optional promise-free put): `done` is called exactly once
 * and never before the call returns, or not at all when the call returns
 * true; under sync `always` a write it acknowledges survives a crash; bad
 * arguments and a closed engine throw; a callback that throws harms no
 * other write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClosedError, InvalidArgumentError, MemoryFileSystem, RealClock, SeededRandom, silentLogger, utf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmEngine, LsmOptions, SyncMode } from '../../src/storage/index.ts';
import { FencedFileSystem } from './helpers.ts';

const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(6, '0')}`);
const value = (i: number): Uint8Array => utf8(`value:${i}:${'z'.repeat(30 + (i % 40))}`);
const meta = (i: number): Uint8Array | undefined => (i % 3 === 0 ? utf8(`m${i}`) : undefined);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
// Small memtables: the puts rotate, flush and wait for room along the way.
const small: Partial<LsmOptions> = { memtableBytes: 16 * 1024, blockBytes: 512, level0CompactionFiles: 2, level0StopWritesFiles: 4, rowCacheBytes: 0 };

/** Issues putCallback for keys [0, n) with at most `inFlight` unfinished; returns how many returned true. */
async function putAll(db: LsmEngine, n: number, inFlight: number): Promise<number> {
  let immediate = 0;
  let pending = 0;
  const calls = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    while (pending >= inFlight) await turn();
    let returned = false;
    const done = (error: Error | undefined): void => {
      assert.ok(returned, `done of key ${i} was called before putCallback returned`);
      assert.equal(error, undefined);
      calls[i] = (calls[i] as number) + 1;
      pending--;
    };
    pending++;
    const finished = db.putCallback(key(i), value(i), meta(i), done);
    returned = true;
    if (finished) {
      immediate++;
      pending--;
      calls[i] = (calls[i] as number) + 1;
    }
  }
  for (let spins = 0; pending > 0; spins++) {
    assert.ok(spins < 100_000, `${pending} callbacks never came`);
    await turn();
  }
  for (let k = 0; k < 20; k++) await turn();
  calls.forEach((c, i) => assert.equal(c, 1, `key ${i} finished ${c} times`));
  return immediate;
}

for (const sync of ['always', 'interval', 'none'] as SyncMode[]) {
  test(`sync ${sync}: every putCallback finishes once, after returning, and every key reads back (also after a reopen)`, async () => {
    const fs = new MemoryFileSystem();
    const db = await openLsm('/db', { ...small, sync }, { fs, clock: new RealClock(), log: silentLogger });
    const n = 3000;
    const immediate = await putAll(db, n, 64);
    if (sync === 'always') assert.equal(immediate, 0, 'a sync-always write is never done at once');
    else assert.ok(immediate > 0, `${immediate} of ${n} puts were done at once`);
    assert.ok((db.stats().flushes as number) > 3, 'the puts went through rotations and flushes');
    for (let i = 0; i < n; i++) {
      const got = await db.get(key(i));
      assert.deepEqual(got?.value, Buffer.from(value(i)), `key ${i}`);
      assert.deepEqual(got?.meta, meta(i) === undefined ? undefined : Buffer.from(meta(i) as Uint8Array));
    }
    await db.close();
    const reopened = await openLsm('/db', small, { fs, clock: new RealClock(), log: silentLogger });
    for (let i = 0; i < n; i += 7) assert.deepEqual((await reopened.get(key(i)))?.value, Buffer.from(value(i)), `key ${i} after reopen`);
    await reopened.close();
  });
}

test('sync none with room in the memtable and no background work: every putCallback is done at once', async () => {
  const db = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
  for (let i = 0; i < 500; i++) assert.equal(db.putCallback(key(i), value(i), undefined, () => assert.fail('done called')), true);
  for (let i = 0; i < 500; i++) assert.deepEqual(db.getNow(key(i))?.value, Buffer.from(value(i)));
  await db.close();
});

test('sync always: a crash loses no write whose callback said done', async () => {
  const random = new SeededRandom(11);
  for (let round = 0; round < 5; round++) {
    const mem = new MemoryFileSystem();
    const fenced = new FencedFileSystem(mem);
    const db = await openLsm('/db', { ...small, sync: 'always' }, { fs: fenced, clock: new RealClock(), log: silentLogger });
    const acked: number[] = [];
    const n = 800;
    for (let i = 0; i < n; i++) {
      db.putCallback(key(i), value(i), meta(i), (error) => {
        if (error === undefined) acked.push(i);
      });
      if (i % 50 === 49) await turn();
    }
    const crashAt = 100 + round * 150;
    for (let spins = 0; acked.length < crashAt; spins++) {
      assert.ok(spins < 100_000, 'writes stalled');
      await turn();
    }
    fenced.fence();
    mem.crash(random, { tornWrites: true });
    const reopened = await openLsm('/db', small, { fs: mem, clock: new RealClock(), log: silentLogger });
    for (const i of acked) assert.deepEqual((await reopened.get(key(i)))?.value, Buffer.from(value(i)), `round ${round}: acknowledged key ${i}`);
    await reopened.close();
  }
});

test('putCallback throws on bad arguments and a closed engine; a throwing callback harms no other write', async () => {
  const db = await openLsm('/db', { ...small, sync: 'always', maxValueBytes: 100 }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
  assert.throws(() => db.putCallback(key(1), new Uint8Array(101), undefined, () => undefined), InvalidArgumentError);
  let others = 0;
  for (let i = 0; i < 20; i++) {
    db.putCallback(key(i), value(i), undefined, () => {
      others++;
      if (i === 3) throw new Error('callback failure');
    });
  }
  for (let spins = 0; others < 20; spins++) {
    assert.ok(spins < 10_000, `${others} of 20 callbacks came`);
    await turn();
  }
  for (let i = 0; i < 20; i++) assert.deepEqual((await db.get(key(i)))?.value, Buffer.from(value(i)));
  await db.close();
  assert.throws(() => db.putCallback(key(1), value(1), undefined, () => undefined), ClosedError);
});

test('sync always: when done reports success the write reads back, and a put from inside done is taken and finishes', async () => {
  const db = await openLsm('/db', { ...small, sync: 'always' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
  const seen: string[] = [];
  let chainedDone = false;
  const finished = db.putCallback(key(1), value(1), undefined, (error) => {
    assert.equal(error, undefined);
    const entry = db.getNow(key(1));
    seen.push(entry === undefined ? 'absent' : Buffer.from(entry.value).toString());
    const again = db.putCallback(key(2), value(2), undefined, (second) => {
      assert.equal(second, undefined);
      chainedDone = true;
    });
    assert.equal(again, false);
  });
  assert.equal(finished, false);
  for (let spins = 0; !chainedDone; spins++) {
    assert.ok(spins < 10_000, 'the put made inside done never finished');
    await turn();
  }
  assert.deepEqual(seen, [Buffer.from(value(1)).toString()]);
  assert.deepEqual(db.getNow(key(2))?.value, Buffer.from(value(2)));
  await db.close();
});
