/**
 * The synchronous paths (ReplicaStore.readRawNow / coordinatePutNow,
 * LocalKv.winnerNow / putNow, winnerOf) answer what the asynchronous ones
 * would, say `wouldWait` (having done nothing) when they cannot, and keep
 * the durability contract.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidArgumentError, MemoryFileSystem, RealClock, VirtualClock, fnv1a32, fromUtf8, silentLogger, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine, openLsm } from '../../../src/storage/index.ts';
import type { EngineEntry } from '../../../src/storage/index.ts';
import { CorruptionError } from '../../../src/core/index.ts';
import {
  LocalKv,
  ReplicaStore,
  decodeObject,
  decodeSupersededBase,
  encodeContext,
  encodeObject,
  ownedObject,
  resolveWinner,
  toGetResult,
  winnerOf,
  durableNow,
  storageKey,
  wouldWait,
} from '../../../src/replication/index.ts';
import type { StoredObject, Version, Winner } from '../../../src/replication/index.ts';
import { objectArb } from './gen.ts';
import { GatedSyncFileSystem, settle } from './gated-fs.ts';

const shown = (w: Winner | undefined | typeof wouldWait): string | undefined => {
  assert.notEqual(w, wouldWait);
  const winner = w as Winner | undefined;
  return winner === undefined ? undefined : winner.kind === 'value' ? fromUtf8(winner.value) : String(winner.count);
};

describe('winnerOf', () => {
  it('is resolveWinner(toGetResult(object)) for any object and time', () => {
    fc.assert(
      fc.property(objectArb, fc.integer({ min: 1_700_000_099_990, max: 1_700_000_100_100 }), (object, now) => {
        assert.deepEqual(winnerOf(object, now), resolveWinner(toGetResult(object, now)));
      }),
      { numRuns: 500 },
    );
    assert.equal(winnerOf(undefined, 0), undefined);
  });
});

describe('object helpers of the synchronous paths', () => {
  it('decodeSupersededBase reads the context and newest timestamp that a full decode gives', () => {
    fc.assert(
      fc.property(objectArb, (object) => {
        const bytes = encodeObject(object);
        const full = decodeObject(bytes);
        const base = decodeSupersededBase(bytes);
        assert.deepEqual(base.context, full.context);
        assert.equal(base.newestTimestampMs, Math.max(-Infinity, ...full.versions.map((v) => v.timestampMs)));
        for (let cut = 0; cut < bytes.length; cut++) assert.throws(() => decodeSupersededBase(bytes.subarray(0, cut)), CorruptionError);
        assert.throws(() => decodeSupersededBase(Buffer.concat([bytes, Buffer.from([0])])), CorruptionError);
      }),
      { numRuns: 200 },
    );
  });

  it('decodeObject with views gives the same object, values viewing the input', () => {
    fc.assert(
      fc.property(objectArb, (object) => {
        const bytes = Buffer.from(encodeObject(object));
        const viewed = decodeObject(bytes, true);
        assert.deepEqual(encodeObject(viewed), encodeObject(decodeObject(bytes)));
        for (const v of viewed.versions) if (v.value.length > 0) assert.equal(v.value.buffer, bytes.buffer);
      }),
      { numRuns: 200 },
    );
  });

  it('encodes a key written on one node (the node table without a sort) as a round trip', () => {
    const version = (counter: number, value: string): Version => ({
      dot: { node: 'solo', counter },
      kind: 'value',
      value: utf8(value),
      counter: [],
      expiresAtMs: null,
      timestampMs: 1_700_000_000_000 + counter,
      deletedAtMs: null,
    });
    const one: StoredObject = { context: [{ node: 'solo', counter: 7, lastWallMs: 5 }], versions: [version(7, 'v')] };
    assert.deepEqual(decodeObject(encodeObject(one)), one);
    const two: StoredObject = { context: [{ node: 'solo', counter: 9, lastWallMs: 5 }], versions: [version(8, 'a'), version(9, 'b')] };
    assert.deepEqual(decodeObject(encodeObject(two)), two);
  });

  it('decodes node ids right when more distinct ids of one length recur than the decoder reuses', () => {
    // Ids of equal length differing in one byte, more of them than the reused-text table holds,
    // decoded interleaved: a reused id must never stand in for a different one.
    const ids = Array.from({ length: 20 }, (_, i) => `node-${String.fromCharCode(97 + i)}${i % 2 === 0 ? 'x' : 'y'}`);
    const objectOf = (i: number): StoredObject => {
      const a = ids[i % ids.length] as string;
      const b = ids[(i * 7 + 3) % ids.length] as string;
      const [first, second] = a < b ? [a, b] : [b, a];
      const context = first === second ? [{ node: first, counter: 3, lastWallMs: 1 }] : [{ node: first, counter: 3, lastWallMs: 1 }, { node: second, counter: 5, lastWallMs: 2 }];
      return { context, versions: [{ dot: { node: first, counter: 3 }, kind: 'value', value: utf8(`v${i}`), counter: [], expiresAtMs: null, timestampMs: 1_700_000_000_000 + i, deletedAtMs: null }] };
    };
    const encoded = Array.from({ length: 60 }, (_, i) => encodeObject(objectOf(i)));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < encoded.length; i++) {
        const index = (i * 13 + round) % encoded.length;
        assert.deepEqual(decodeObject(encoded[index] as Uint8Array), objectOf(index));
      }
    }
    // Non-ASCII ids are decoded as UTF-8, never taken for a reused ASCII one.
    const unicode: StoredObject = { context: [{ node: 'nœud-1', counter: 1, lastWallMs: 0 }], versions: [] };
    assert.deepEqual(decodeObject(encodeObject(unicode)), unicode);
  });

  it('ownedObject copies only values that view a much larger buffer', () => {
    const slab = Buffer.alloc(8192, 7);
    const pinned = slab.subarray(100, 110);
    const exact = Uint8Array.prototype.slice.call(pinned);
    const object: StoredObject = {
      context: [{ node: 'a', counter: 2, lastWallMs: 0 }],
      versions: [1, 2].map((counter) => ({ dot: { node: 'a', counter }, kind: 'value' as const, value: counter === 1 ? pinned : exact, counter: [], expiresAtMs: null, timestampMs: counter, deletedAtMs: null })),
    };
    const owned = ownedObject(object, 256);
    assert.notEqual(owned.versions[0]?.value.buffer, slab.buffer);
    assert.equal(owned.versions[0]?.value.buffer.byteLength, 10);
    assert.equal(owned.versions[1], object.versions[1]);
    assert.deepEqual(encodeObject(owned), encodeObject(object));
    const clean: StoredObject = { context: object.context, versions: [object.versions[1] as Version] };
    assert.equal(ownedObject(clean, 256), clean);
  });
});

describe('synchronous reads and writes over the LSM engine', () => {
  it('winnerNow and putNow agree with get and put, values, counters, expiry and deletes included', async () => {
    const clock = new VirtualClock();
    const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
    const kv = new LocalKv({ store, clock });
    try {
      assert.equal(shown(kv.winnerNow(utf8('k'))), undefined);
      const durable = kv.putNow(utf8('k'), utf8('v1'), { overwrite: true });
      assert.notEqual(durable, wouldWait);
      await durable;
      assert.equal(shown(kv.winnerNow(utf8('k'))), 'v1');
      assert.equal(shown(resolveWinner(await kv.get(utf8('k')))), 'v1');
      // A blind write beside it is a sibling, as put makes it.
      await kv.putNow(utf8('k'), utf8('v2'));
      assert.deepEqual((await kv.get(utf8('k'))).siblings.map((s) => (s.kind === 'value' ? fromUtf8(s.value) : s.kind)).sort(), ['v1', 'v2']);
      await kv.putNow(utf8('k'), utf8('v3'), { overwrite: true });
      assert.equal((await kv.get(utf8('k'))).siblings.length, 1);
      assert.equal(shown(kv.winnerNow(utf8('k'))), 'v3');

      await kv.incrBy(utf8('n'), 41n);
      await kv.incrBy(utf8('n'), 1n);
      assert.equal(shown(kv.winnerNow(utf8('n'))), '42');

      await kv.putNow(utf8('t'), utf8('short'), { overwrite: true, expiresAtMs: clock.wallMs() + 1000 });
      assert.equal(shown(kv.winnerNow(utf8('t'))), 'short');
      await clock.advance(1000);
      assert.equal(shown(kv.winnerNow(utf8('t'))), undefined);

      await kv.delete(utf8('k'));
      assert.equal(shown(kv.winnerNow(utf8('k'))), undefined);
      // readRawNow reads enough to admit the key to the object cache (winnerNow reads the engine only).
      for (let i = 0; i < 20; i++) {
        assert.equal(shown(kv.winnerNow(utf8('n'))), '42');
        store.readRawNow(utf8('n'));
      }
      // A value viewing a large buffer (as a socket chunk) is copied when it enters the cache, not before.
      const slab = Buffer.alloc(8192, 0x37);
      await kv.putNow(utf8('n'), slab.subarray(10, 11), { overwrite: true });
      assert.equal(shown(kv.winnerNow(utf8('n'))), '7');
      const cached = store.readRawNow(utf8('n')) as StoredObject;
      assert.equal(store.readRawNow(utf8('n')), cached, 'served from the object cache');
      assert.ok((cached.versions[0]?.value.buffer.byteLength ?? 0) < 300, 'the cached value pins its source buffer');
      assert.deepEqual(Buffer.from(encodeObject((await store.readRaw(utf8('n')))!)), Buffer.from(encodeObject(store.readRawNow(utf8('n')) as never)));
      // Sync none: the engine applies a put at once and answers with a promise already seen resolved,
      // so the write is settled as it is handed over, the cached object included, with nothing to await.
      assert.equal(kv.putNow(utf8('n'), utf8('8'), { overwrite: true }), durableNow);
      assert.equal(shown(kv.winnerNow(utf8('n'))), '8');
      assert.equal(store.readRawNow(utf8('n')), store.readRawNow(utf8('n')), 'still served from the object cache');
      assert.equal(shown(resolveWinner(await kv.get(utf8('n')))), '8');
    } finally {
      await engine.close();
    }
  });

  it('a plain SET decided at once (the overwrite path) writes what the general write path writes', async () => {
    // Same stored object on two stores, same clock: coordinatePut (general decide) and
    // coordinatePutNow (its overwrite path) must give equal objects, bytes and contexts.
    const open = (): Promise<Awaited<ReturnType<typeof openLsm>>> => openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    await fc.assert(
      fc.asyncProperty(fc.option(objectArb, { nil: undefined }), fc.option(fc.integer({ min: 1_700_000_100_000, max: 1_700_000_200_000 }), { nil: null }), async (stored, expiresAtMs) => {
        const clock = new VirtualClock({ startMs: 50_000 });
        const [engineA, engineB] = [await open(), await open()];
        try {
          const general = new ReplicaStore({ engine: engineA, clock, nodeId: 'b' });
          const now = new ReplicaStore({ engine: engineB, clock, nodeId: 'b' });
          if (stored !== undefined) {
            await general.apply(utf8('k'), stored);
            await now.apply(utf8('k'), stored);
          }
          const a = await general.coordinatePut(utf8('k'), utf8('new'), null, { overwrite: true, expiresAtMs });
          const b = now.coordinatePutNow(utf8('k'), utf8('new'), null, { overwrite: true, expiresAtMs });
          assert.notEqual(b, wouldWait);
          const outcome = b as Exclude<typeof b, typeof wouldWait>;
          assert.deepEqual(outcome.object, a.object);
          assert.deepEqual(outcome.written, a.written);
          assert.deepEqual(outcome.context, a.context);
          await Promise.all([a.durable, outcome.durable]);
          assert.deepEqual(Buffer.from(encodeObject((await now.readRaw(utf8('k')))!)), Buffer.from(encodeObject((await general.readRaw(utf8('k')))!)));
        } finally {
          await engineA.close();
          await engineB.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keys whose storage keys hash alike never see each other\'s cached object', async () => {
    // The object cache finds slots by a 32-bit hash of the storage key: find two keys sharing one.
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined && i < 2_000_000; i++) {
      const name = `c${i}`;
      const h = fnv1a32(storageKey(utf8(name)));
      const other = seen.get(h);
      if (other !== undefined) pair = [other, name];
      else seen.set(h, name);
    }
    assert.ok(pair !== undefined, 'a colliding pair exists among 2M keys');
    const [a, b] = pair.map(utf8) as [Uint8Array, Uint8Array];
    const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    const clock = new VirtualClock();
    const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
    const kv = new LocalKv({ store, clock });
    try {
      await kv.putNow(a, utf8('value-a'), { overwrite: true });
      await kv.putNow(b, utf8('value-b'), { overwrite: true });
      for (let round = 0; round < 4; round++) {
        // Enough reads that each key is admitted in turn, taking the shared slot from the other.
        for (let i = 0; i < 20; i++) {
          assert.equal(shown(kv.winnerNow(a)), round < 2 ? 'value-a' : 'a2');
          assert.equal(shown(kv.winnerNow(b)), round < 1 ? 'value-b' : round < 3 ? 'b2' : undefined);
        }
        if (round === 0) await kv.putNow(b, utf8('b2'), { overwrite: true });
        if (round === 1) await kv.putNow(a, utf8('a2'), { overwrite: true });
        if (round === 2) await kv.delete(b);
        assert.equal(shown(resolveWinner(await kv.get(a))), round < 1 ? 'value-a' : 'a2');
      }
    } finally {
      await engine.close();
    }
  });

  it('refuse what get and put refuse, synchronously', async () => {
    const clock = new VirtualClock();
    const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock });
    try {
      assert.throws(() => kv.winnerNow(new Uint8Array(70_000)), InvalidArgumentError);
      assert.throws(() => kv.putNow(utf8('k'), utf8('v'), { w: 2 }), /only 1 of 2 replicas/);
      assert.throws(() => kv.putNow(utf8('k'), utf8('v'), { expiresAtMs: -5 }), InvalidArgumentError);
      assert.equal(shown(kv.winnerNow(utf8('k'))), undefined, 'nothing was written');
    } finally {
      await engine.close();
    }
  });

  it('the overwrite memo keeps two keys of a set, drops the least recently used, and never builds on what it forgot', async () => {
    // Three keys in one set of the memo (indexed by the low 17 bits of fnv1a32 of the storage key).
    const bySet = new Map<number, string[]>();
    let trio: string[] | undefined;
    for (let i = 0; trio === undefined && i < 2_000_000; i++) {
      const name = `m${i}`;
      const set = fnv1a32(storageKey(utf8(name))) & ((1 << 17) - 1);
      const names = bySet.get(set) ?? [];
      names.push(name);
      bySet.set(set, names);
      if (names.length === 3) trio = names;
    }
    assert.ok(trio !== undefined, 'three keys share a set among 2M names');
    const keys = trio.map(utf8);
    const [a, b, c] = keys as [Uint8Array, Uint8Array, Uint8Array];
    const open = async (): Promise<{ engine: Awaited<ReturnType<typeof openLsm>>; kv: LocalKv }> => {
      const clock = new VirtualClock();
      const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
      return { engine, kv: new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock }) };
    };

    const { engine, kv } = await open();
    /** Engine reads a plain SET of the key made: 0 when the memo knew the key. */
    const overwrite = async (key: Uint8Array, value: string): Promise<number> => {
      const before = Number(engine.stats().gets);
      await kv.putNow(key, utf8(value), { overwrite: true });
      return Number(engine.stats().gets) - before;
    };
    try {
      assert.equal(await overwrite(a, 'a1'), 1);
      assert.equal(await overwrite(b, 'b1'), 1);
      assert.equal(await overwrite(a, 'a2'), 0, 'two keys of a set are both remembered');
      assert.equal(await overwrite(b, 'b2'), 0);
      // c takes the slot of the least recently used (a).
      assert.equal(await overwrite(c, 'c1'), 1);
      assert.equal(await overwrite(b, 'b3'), 0);
      assert.equal(await overwrite(c, 'c2'), 0);
      assert.equal(await overwrite(a, 'a3'), 1, 'a was dropped');
      // Now a and c are remembered; b was dropped.
      assert.equal(await overwrite(c, 'c3'), 0);
      assert.equal(await overwrite(b, 'b4'), 1);
    } finally {
      await engine.close();
    }

    // Over random plain SETs and blind writes of the three keys, a plain SET always supersedes
    // everything stored and the key's causal context never loses an entry, whichever slot its key
    // held or lost. Blind writes carry a context naming another node, so a SET that built on a
    // forgotten memo entry (this node's entry only) would drop that node from the clock.
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ key: fc.integer({ min: 0, max: 2 }), blind: fc.boolean() }), { maxLength: 30 }), async (steps) => {
        const { engine, kv } = await open();
        const model: string[][] = [[], [], []];
        const foreign = [0, 0, 0];
        try {
          for (const [i, step] of steps.entries()) {
            const key = keys[step.key] as Uint8Array;
            const value = `${step.blind ? 'blind' : 'plain'}-${i}`;
            if (step.blind) {
              foreign[step.key] = i + 1;
              await kv.putNow(key, utf8(value), { context: encodeContext([{ node: 'other', counter: i + 1, lastWallMs: 0 }]) });
              model[step.key]?.push(value);
            } else {
              await kv.putNow(key, utf8(value), { overwrite: true });
              model[step.key] = [value];
            }
            for (const [k, expected] of model.entries()) {
              // Read from the engine: a read through the store would admit the key to its object
              // cache, and a plain SET of a cached key does not consult the memo.
              const entry = engine.getNow(storageKey(keys[k] as Uint8Array)) as EngineEntry | undefined;
              const stored = entry === undefined ? undefined : decodeObject(entry.value);
              assert.deepEqual((stored?.versions ?? []).map((v) => fromUtf8(v.value)).sort(), [...expected].sort());
              const other = stored?.context.find((e) => e.node === 'other')?.counter ?? 0;
              assert.ok(other >= (foreign[k] as number), `key ${k}: the context lost the other node's entry ${foreign[k]} (has ${other})`);
            }
          }
        } finally {
          await engine.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('putNow waits (writing nothing) while an operation holds the key, and goes after it', async () => {
    const clock = new VirtualClock();
    const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
    try {
      await (await store.coordinatePut(utf8('k'), utf8('1'), null)).durable;
      // Not cached: the increment reads the engine under the key's lock.
      const incr = store.coordinateIncr(utf8('k'), 1n);
      assert.equal(store.coordinatePutNow(utf8('k'), utf8('x'), null, { overwrite: true }), wouldWait);
      await (await incr).durable;
      const now = store.coordinatePutNow(utf8('k'), utf8('x'), null, { overwrite: true });
      assert.notEqual(now, wouldWait);
      await (now as Exclude<typeof now, typeof wouldWait>).durable;
      const object = await store.read(utf8('k'));
      assert.deepEqual(object?.versions.map((v) => fromUtf8(v.value)), ['x']);
    } finally {
      await engine.close();
    }
  });

  it('under sync always, putNow resolves only after the fsync, and reads show the write only then', async () => {
    const fs = new GatedSyncFileSystem();
    const clock = new VirtualClock();
    const engine = await openLsm('/db', { sync: 'always' }, { fs, clock: new RealClock(), log: silentLogger });
    const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock });
    try {
      await kv.put(utf8('k'), utf8('old'), { overwrite: true });
      fs.gated = true;
      const durable = kv.putNow(utf8('k'), utf8('new'), { overwrite: true });
      assert.notEqual(durable, wouldWait);
      assert.notEqual(durable, durableNow, 'acknowledged before the fsync');
      let acknowledged = false;
      void (durable as Promise<void>).then(() => (acknowledged = true));
      await settle();
      assert.equal(acknowledged, false, 'acknowledged before the fsync');
      assert.equal(shown(kv.winnerNow(utf8('k'))), 'old');
      // A second write of the key builds on the pending one and lands after it.
      const second = kv.putNow(utf8('k'), utf8('newer'), { overwrite: true });
      assert.notEqual(second, wouldWait);
      fs.release();
      await durable;
      await second;
      assert.equal(shown(kv.winnerNow(utf8('k'))), 'newer');
    } finally {
      fs.release();
      await engine.close();
    }
  });
});

describe('synchronous paths over an engine without a synchronous lookup', () => {
  it('say wouldWait for what is not in memory and answer what is', async () => {
    const clock = new VirtualClock();
    const store = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'n1' });
    const kv = new LocalKv({ store, clock });
    assert.equal(kv.winnerNow(utf8('k')), wouldWait);
    assert.equal(kv.putNow(utf8('k'), utf8('v'), { overwrite: true }), wouldWait);
    assert.equal((await kv.get(utf8('k'))).siblings.length, 0, 'nothing was written');
    await kv.put(utf8('k'), utf8('v'), { overwrite: true });
    assert.equal(kv.winnerNow(utf8('k')), wouldWait);
    // Reads admit the key to the object cache; from then on both answer at once.
    for (let i = 0; i < 20; i++) await kv.get(utf8('k'));
    assert.equal(shown(kv.winnerNow(utf8('k'))), 'v');
    const durable = kv.putNow(utf8('k'), utf8('w'), { overwrite: true });
    assert.notEqual(durable, wouldWait);
    await durable;
    assert.equal(shown(resolveWinner(await kv.get(utf8('k')))), 'w');
  });
});
