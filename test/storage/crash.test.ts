/**
 * Crash tests on the crash-modelling MemoryFileSystem: concurrent writers with
 * sync `always` while flushes and compactions run; a crash at a random
 * moment (optionally tearing unsynced writes); then every acknowledged write
 * must be there, every batch all-or-nothing, and the database must reopen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, SeededRandom, silentLogger, utf8, fromUtf8 } from '../../src/core/index.ts';
import type { Random } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { BatchOp, LsmEngine, LsmOptions, SyncMode } from '../../src/storage/index.ts';
import { FencedFileSystem } from './helpers.ts';

const writers = 4;
const keysPerWriter = 6;
/** undefined: deleted (or never written). */
type KeyState = string | undefined;

const options: Partial<LsmOptions> = {
  memtableBytes: 2048,
  blockBytes: 256,
  targetFileBytes: 2048,
  level1Bytes: 4096,
  levelSizeMultiplier: 2,
  level0CompactionFiles: 2,
  level0StopWritesFiles: 6,
};

interface Writer {
  acked: Map<string, KeyState>;
  inflight: Map<string, KeyState> | undefined;
}

function keyOf(w: number, k: number): string {
  return `w${w}-k${k}`;
}

async function crashRound(
  fs: MemoryFileSystem,
  random: Random,
  state: Writer[],
  tornWrites: boolean,
  sync: SyncMode,
): Promise<void> {
  const fenced = new FencedFileSystem(fs);
  const db: LsmEngine = await openLsm('/db', { ...options, sync }, { fs: fenced, clock: new RealClock(), log: silentLogger });
  await verify(db, state, 'after reopen');
  const crashAfterAcks = random.int(120);
  let acks = 0;
  let crashed = false;
  let version = 0;
  const crash = (): void => {
    if (crashed) return;
    crashed = true;
    fenced.fence();
    fs.crash(random, { tornWrites });
  };
  const runWriter = async (w: number): Promise<void> => {
    const me = state[w] as Writer;
    while (!crashed) {
      const batch: BatchOp[] = [];
      const planned = new Map<string, KeyState>();
      const n = 1 + random.int(3);
      for (let i = 0; i < n; i++) {
        const key = keyOf(w, random.int(keysPerWriter));
        if (planned.has(key)) continue;
        if (random.float() < 0.2) {
          batch.push({ type: 'delete', key: utf8(key) });
          planned.set(key, undefined);
        } else {
          const value = `${key}:v${++version}:${'x'.repeat(random.int(200))}`;
          batch.push({ type: 'put', key: utf8(key), value: utf8(value) });
          planned.set(key, value);
        }
      }
      me.inflight = planned;
      try {
        await db.write(batch);
      } catch (error) {
        if (crashed) return;
        throw error;
      }
      if (crashed) return;
      for (const [k, v] of planned) me.acked.set(k, v);
      me.inflight = undefined;
      if (++acks >= crashAfterAcks) crash();
    }
  };
  const done = Promise.all(Array.from({ length: writers }, (_, w) => runWriter(w)));
  // Some rounds crash between event-loop turns rather than right after an ack.
  if (random.float() < 0.5) {
    const turns = random.int(40);
    void (async () => {
      for (let i = 0; i < turns && !crashed; i++) await new Promise((r) => setImmediate(r));
      crash();
    })();
  }
  await done;
}

async function verify(db: LsmEngine, state: Writer[], when: string): Promise<void> {
  for (let w = 0; w < writers; w++) {
    const me = state[w] as Writer;
    const matchedInflight: string[] = [];
    const matchedAcked: string[] = [];
    for (let k = 0; k < keysPerWriter; k++) {
      const key = keyOf(w, k);
      const got = await db.get(utf8(key));
      const value: KeyState = got === undefined ? undefined : fromUtf8(got.value);
      const acked = me.acked.get(key);
      const inflight = me.inflight?.get(key);
      const inflightTouches = me.inflight?.has(key) === true;
      if (value === acked) {
        if (inflightTouches && inflight !== acked) matchedAcked.push(key);
        continue;
      }
      assert.ok(inflightTouches && value === inflight, `${when}: ${key} is ${value?.slice(0, 20)}, acknowledged ${acked?.slice(0, 20)}`);
      matchedInflight.push(key);
    }
    // The batch in flight at the crash is all-or-nothing.
    assert.ok(matchedInflight.length === 0 || matchedAcked.length === 0, `${when}: batch of writer ${w} is half applied: ${matchedInflight} vs ${matchedAcked}`);
    if (me.inflight !== undefined) {
      if (matchedInflight.length > 0) for (const [k, v] of me.inflight) me.acked.set(k, v);
      me.inflight = undefined;
    }
  }
}

async function crashSeries(seed: number, tornWrites: boolean, sync: SyncMode): Promise<void> {
  const random = new SeededRandom(seed);
  const fs = new MemoryFileSystem();
  const state: Writer[] = Array.from({ length: writers }, () => ({ acked: new Map(), inflight: undefined }));
  for (let round = 0; round < 4; round++) await crashRound(fs, random, state, tornWrites, sync);
  const db = await openLsm('/db', options, { fs, clock: new RealClock(), log: silentLogger });
  try {
    await verify(db, state, 'final');
    await db.compact();
    await verify(db, state, 'after compaction');
  } finally {
    await db.close();
  }
}

const seeds = Number(process.env.RINGKV_CRASH_SEEDS ?? 40);

test('sync always: every acknowledged write survives crashes at random points (no torn writes)', async () => {
  for (let seed = 1; seed <= seeds; seed++) await crashSeries(seed, false, 'always');
});

test('sync always: every acknowledged write survives crashes that tear unsynced writes', async () => {
  for (let seed = 1000; seed < 1000 + seeds; seed++) await crashSeries(seed, true, 'always');
});

test('sync none: a crash loses only unacknowledged-durable writes and never half a batch; the database reopens', async () => {
  for (let seed = 2000; seed < 2000 + seeds / 2; seed++) {
    const random = new SeededRandom(seed);
    const fs = new MemoryFileSystem();
    const fenced = new FencedFileSystem(fs);
    const db = await openLsm('/db', { ...options, sync: 'none' }, { fs: fenced, clock: new RealClock(), log: silentLogger });
    const batches: string[][] = [];
    for (let i = 0; i < 50 + random.int(200); i++) {
      const keys = [`a${i}`, `b${i}`, `c${i}`];
      await db.write(keys.map((k) => ({ type: 'put' as const, key: utf8(k), value: utf8(`${k}-${'y'.repeat(random.int(100))}`) })));
      batches.push(keys);
    }
    if (random.float() < 0.5) await db.sync();
    fenced.fence();
    fs.crash(random, { tornWrites: true });
    const again = await openLsm('/db', options, { fs, clock: new RealClock(), log: silentLogger });
    let present = 0;
    for (const keys of batches) {
      const found = await Promise.all(keys.map(async (k) => (await again.get(utf8(k))) !== undefined));
      assert.ok(found.every((f) => f) || found.every((f) => !f), `seed ${seed}: batch ${keys} is half applied`);
      if (found[0]) present++;
    }
    assert.ok(present <= batches.length);
    await again.close();
  }
});
