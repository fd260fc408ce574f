/**
 * The ReplicaStore durability contract: a write resolves once its object is
 * decided and handed to the engine (the key's lock is released before the
 * WAL fsync); its `durable` promise resolves after the fsync; a later write of
 * the same key builds on the pending one; a failed engine write leaves no
 * trace for later writers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IoError, RealClock, VirtualClock, fnv1a32, fromUtf8, silentLogger, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine, openLsm } from '../../../src/storage/index.ts';
import type { Engine } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore, durableLater, durableNow, encodeObject, maxKeyBytes, storageKey, wouldWait } from '../../../src/replication/index.ts';
import type { StoredObject } from '../../../src/replication/index.ts';
import { GatedSyncFileSystem, settle } from './gated-fs.ts';

/** Rejects if `p` has not settled within `ms` (a write stuck behind the fsync fails the test instead of hanging it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not resolve within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const valuesOf = (o: StoredObject | undefined): string[] => (o?.versions ?? []).filter((v) => v.kind === 'value').map((v) => fromUtf8(v.value)).sort();

/** A store over an LSM engine whose WAL fsyncs the test gates; after `body`, pass or fail, the gate opens and the engine closes. */
async function withGatedStore(body: (t: { fs: GatedSyncFileSystem; engine: Engine; store: ReplicaStore; clock: VirtualClock }) => Promise<void>): Promise<void> {
  const fs = new GatedSyncFileSystem();
  const engine = await openLsm('/db', { sync: 'always' }, { fs, clock: new RealClock(), log: silentLogger });
  const clock = new VirtualClock();
  try {
    await body({ fs, engine, store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock });
  } finally {
    fs.release();
    await engine.close();
  }
}

describe('ReplicaStore durability contract', () => {
  it('finds every pending write of a thousand keys while they wait for one fsync (the pending table grows past its first buckets)', () =>
    withGatedStore(async ({ fs, store }) => {
      fs.gated = true;
      const keys = Array.from({ length: 1000 }, (_, i) => utf8(`key-${i}`));
      const firsts = [];
      for (const key of keys) firsts.push(await within(store.coordinatePut(key, utf8('a'), null), 2000, 'a first write'));
      // Every key is still pending: a blind write builds on what is pending, so it must keep 'a' as a sibling.
      const seconds = [];
      for (const key of keys) seconds.push(await within(store.coordinatePut(key, utf8('b'), null), 2000, 'a second write'));
      seconds.forEach((w, i) => assert.deepEqual(valuesOf(w.object), ['a', 'b'], `key ${i}`));
      fs.release();
      await Promise.all([...firsts, ...seconds].map((w) => w.durable));
      for (const i of [0, 255, 256, 511, 999]) assert.deepEqual(valuesOf(await store.readRaw(keys[i] as Uint8Array)), ['a', 'b'], `key ${i} read back`);
    }));

  it('releases the key lock before the fsync, resolves durable after it, and a later write sees the earlier one', () =>
    withGatedStore(async ({ fs, store }) => {
      const key = utf8('k');
      fs.gated = true;
      const first = await within(store.coordinatePut(key, utf8('a'), null), 2000, 'the first write');
      let firstDurable = false;
      void first.durable.then(() => (firstDurable = true));
      await settle();
      assert.equal(firstDurable, false, 'durable must wait for the fsync');
      assert.ok(fs.syncsStarted >= 1, 'the engine is syncing while the write already resolved');
      // The lock is free: a second write of the same key completes its decision now, building on the first.
      const second = await within(store.coordinatePut(key, utf8('b'), null), 2000, 'a second write of the key while the first syncs');
      assert.deepEqual(valuesOf(second.object), ['a', 'b'], 'a blind write becomes a sibling of the pending one');
      const overwrite = await store.coordinatePut(key, utf8('c'), null, { overwrite: true });
      assert.deepEqual(valuesOf(overwrite.object), ['c'], 'an overwrite supersedes both pending versions');
      // Not durable yet, so an unlocked read does not show it (no dirty reads under sync always).
      assert.equal(await store.readRaw(key), undefined);
      fs.release();
      await Promise.all([first.durable, second.durable, overwrite.durable]);
      assert.equal(firstDurable, true);
      assert.deepEqual(valuesOf(await store.readRaw(key)), ['c']);
    }));

  it('pending writes of keys whose storage keys share a hash stay apart (the pending map chains them)', () =>
    withGatedStore(async ({ fs, store }) => {
      // Found by search: fnv1a32 of their storage keys is equal (the pending map's hash).
      const [a, b] = [utf8('k67907'), utf8('k87695')];
      assert.equal(fnv1a32(storageKey(a)), fnv1a32(storageKey(b)), 'the keys no longer collide: search for a new pair');
      fs.gated = true;
      const durable = [store.overwriteNow(a, utf8('a1'), null), store.overwriteNow(b, utf8('b1'), null)];
      for (const d of durable) assert.ok(d instanceof Promise, 'both writes wait for the fsync');
      // Each key's next write builds on its own pending write, whichever is first in the chain.
      const onA = store.coordinatePutNow(a, utf8('a2'), null);
      const onB = store.coordinatePutNow(b, utf8('b2'), null);
      assert.ok(onA !== wouldWait && onB !== wouldWait);
      assert.deepEqual(valuesOf(onA.object), ['a1', 'a2']);
      assert.deepEqual(valuesOf(onB.object), ['b1', 'b2']);
      const overA = await store.coordinatePut(a, utf8('a3'), null, { overwrite: true });
      assert.deepEqual(valuesOf(overA.object), ['a3']);
      const onB2 = store.coordinatePutNow(b, utf8('b3'), null);
      assert.ok(onB2 !== wouldWait);
      assert.deepEqual(valuesOf(onB2.object), ['b1', 'b2', 'b3'], 'replacing a pending write of one key leaves the other in the chain');
      fs.release();
      await Promise.all([...durable, onA.durable, onB.durable, overA.durable, onB2.durable]);
      assert.deepEqual(valuesOf(await store.readRaw(a)), ['a3']);
      assert.deepEqual(valuesOf(await store.readRaw(b)), ['b1', 'b2', 'b3']);
      // Settled writes left the map: writes now read the engine.
      const fresh = store.coordinatePutNow(a, utf8('a4'), null, { overwrite: true });
      assert.ok(fresh !== wouldWait);
      await fresh.durable;
      assert.deepEqual(valuesOf(await store.readRaw(a)), ['a4']);
    }));

  it('a plain SET handed over with Engine.putCallback: its promise, a listener and a write built on it all see a failed fsync, and nothing of it remains', () =>
    withGatedStore(async ({ fs, engine, store }) => {
      assert.ok(engine.putCallback !== undefined, 'the LSM engine offers putCallback');
      const key = utf8('k');
      const first = store.overwriteNow(key, utf8('stored'), null);
      assert.ok(first instanceof Promise);
      await first;
      fs.gated = true;
      const told: Array<[number, boolean, unknown]> = [];
      const viaPromise = store.overwriteNow(key, utf8('lost'), null);
      assert.ok(viaPromise instanceof Promise);
      const other = utf8('other');
      assert.equal(store.overwriteNowThen(other, utf8('o'), null, false, { writeSettled: (token, failed, error) => told.push([token, failed, error]) }, 7), durableLater);
      const builtOn = store.coordinatePutNow(key, utf8('after'), null);
      assert.ok(builtOn !== wouldWait);
      assert.deepEqual(valuesOf(builtOn.object), ['after', 'lost'], 'built on the pending SET (decoded from its bytes)');
      await settle();
      assert.deepEqual(told, [], 'the listener is told only after the fsync');
      fs.failing = true;
      fs.release();
      await assert.rejects(viaPromise, /EIO/);
      await assert.rejects(builtOn.durable, (e: unknown) => e instanceof IoError && /an earlier write of it on n1 failed/.test(e.message));
      assert.equal(told.length, 1);
      assert.equal(told[0]?.[0], 7);
      assert.equal(told[0]?.[1], true);
      assert.match(String(told[0]?.[2]), /EIO/);
      fs.failing = false;
      // Nothing of the failed writes remains: the next SET reads what the engine stored.
      const next = store.coordinatePutNow(key, utf8('next'), null);
      assert.ok(next !== wouldWait);
      await next.durable;
      assert.deepEqual(valuesOf(await store.readRaw(key)), ['next', 'stored']);
      assert.equal(await store.readRaw(other), undefined);
    }));

  it('LocalKv answers only once the write is durable', () =>
    withGatedStore(async ({ fs, store, clock }) => {
      const kv = new LocalKv({ store, clock });
      fs.gated = true;
      let answered = false;
      const put = kv.put(utf8('k'), utf8('v'), { overwrite: true }).then(() => (answered = true));
      await settle();
      assert.equal(answered, false);
      fs.release();
      await put;
      assert.equal(answered, true);
      const got = await kv.get(utf8('k'));
      assert.deepEqual(got.siblings.map((s) => (s.kind === 'value' ? fromUtf8(s.value) : s.kind)), ['v']);
    }));

  it('apply resolves only after its merge is durable', () =>
    withGatedStore(async ({ fs, store }) => {
      const other = new ReplicaStore({ engine: new MemoryEngine(), clock: new VirtualClock(), nodeId: 'n2' });
      const key = utf8('k');
      const incoming = (await other.coordinatePut(key, utf8('x'), null)).object;
      fs.gated = true;
      let applied = false;
      const done = store.apply(key, incoming).then(() => (applied = true));
      await settle();
      assert.equal(applied, false);
      fs.release();
      await done;
      assert.deepEqual(valuesOf(await store.readRaw(key)), ['x']);
    }));

  it('apply merges into a pending write of the key, resolves after both are durable, and rejects (not throws) a bad key', () =>
    withGatedStore(async ({ fs, store }) => {
      const other = new ReplicaStore({ engine: new MemoryEngine(), clock: new VirtualClock(), nodeId: 'n2' });
      const key = utf8('k');
      fs.gated = true;
      const local = await within(store.coordinatePut(key, utf8('mine'), null), 2000, 'the local write');
      // A concurrent write elsewhere: the replica keeps both as siblings, built on the pending one.
      const incoming = (await other.coordinatePut(key, utf8('theirs'), null)).object;
      let applied: StoredObject | undefined;
      const done = store.apply(key, incoming).then((o) => (applied = o));
      await settle();
      assert.equal(applied, undefined, 'not durable yet');
      fs.release();
      await Promise.all([done, local.durable]);
      assert.deepEqual(valuesOf(applied), ['mine', 'theirs']);
      assert.deepEqual(valuesOf(await store.readRaw(key)), ['mine', 'theirs']);
      // Applying it again changes nothing and resolves with what is stored.
      assert.deepEqual(valuesOf(await store.apply(key, incoming)), ['mine', 'theirs']);
      const bad = store.apply(new Uint8Array(maxKeyBytes + 1), incoming);
      await assert.rejects(bad);
    }));

  it('applyThen tells its listener once, only after the fsync, keeps only bytes meanwhile, and a write built on it sees its object', () =>
    withGatedStore(async ({ fs, store }) => {
      const other = new ReplicaStore({ engine: new MemoryEngine(), clock: new VirtualClock(), nodeId: 'n2' });
      const key = utf8('k');
      const bytes = encodeObject((await other.coordinatePut(key, utf8('theirs'), null)).object);
      fs.gated = true;
      const told: Array<[number, boolean, unknown]> = [];
      const listener = { writeSettled: (token: number, failed: boolean, error: unknown) => told.push([token, failed, error]) };
      assert.equal(store.applyThen(key, bytes, listener, 5), durableLater);
      assert.deepEqual(told, [], 'never told inside the call');
      // A local write of the key while the apply waits builds on it (the pending entry decodes its bytes).
      const mine = store.coordinatePutNow(key, utf8('mine'), null);
      assert.ok(mine !== wouldWait);
      assert.deepEqual(valuesOf(mine.object), ['mine', 'theirs']);
      await settle();
      assert.deepEqual(told, [], 'the listener waits for the fsync');
      assert.equal(await store.readRaw(key), undefined, 'nothing visible before it is durable');
      fs.release();
      await mine.durable;
      await settle();
      assert.deepEqual(told, [[5, false, undefined]]);
      assert.deepEqual(valuesOf(await store.readRaw(key)), ['mine', 'theirs']);
      // The same object again changes nothing: durable at once.
      assert.equal(store.applyThen(key, bytes, listener, 6), durableNow);
      await settle();
      assert.equal(told.length, 1);
      // Garbage from a peer is refused before anything is written.
      assert.throws(() => store.applyThen(utf8('bad'), new Uint8Array([0xff, 1, 2]), listener, 7));
      assert.equal(await store.readRaw(utf8('bad')), undefined);
    }));

  it('applyThen reports a failed fsync to its listener, and nothing of the write remains', () =>
    withGatedStore(async ({ fs, store }) => {
      const other = new ReplicaStore({ engine: new MemoryEngine(), clock: new VirtualClock(), nodeId: 'n2' });
      const key = utf8('k');
      const bytes = encodeObject((await other.coordinatePut(key, utf8('lost'), null)).object);
      fs.gated = true;
      const told: Array<[number, boolean, unknown]> = [];
      assert.equal(store.applyThen(key, bytes, { writeSettled: (token, failed, error) => told.push([token, failed, error]) }, 9), durableLater);
      fs.failing = true;
      fs.release();
      for (let i = 0; i < 50 && told.length === 0; i++) await settle();
      assert.equal(told.length, 1);
      assert.equal(told[0]?.[0], 9);
      assert.equal(told[0]?.[1], true);
      assert.match(String(told[0]?.[2]), /EIO/);
      fs.failing = false;
      const next = store.coordinatePutNow(key, utf8('next'), null);
      assert.ok(next !== wouldWait);
      assert.deepEqual(valuesOf(next.object), ['next'], 'the failed apply is not built on');
    }));

  it("a coordinated write's whenDurable tells its listener once after the fsync, also when the write settled before it was asked", () =>
    withGatedStore(async ({ fs, store }) => {
      fs.gated = true;
      const now = store.coordinatePutNow(utf8('a'), utf8('1'), null);
      assert.ok(now !== wouldWait && now.settled !== true && now.whenDurable !== undefined);
      const told: Array<[number, boolean]> = [];
      now.whenDurable({ writeSettled: (token, failed) => told.push([token, failed]) }, 1);
      await settle();
      assert.deepEqual(told, [], 'not before the fsync');
      fs.release();
      for (let i = 0; i < 50 && told.length === 0; i++) await settle();
      assert.deepEqual(told, [[1, false]]);
      // An outcome reaching its waiter after its write settled (the asynchronous path) is still told, once, later.
      const late = await store.coordinatePut(utf8('b'), utf8('2'), null);
      await late.durable;
      const told2: number[] = [];
      late.whenDurable?.({ writeSettled: (token, failed) => told2.push(failed ? -token : token) }, 2);
      const calledInside = told2.length > 0;
      await settle();
      assert.equal(calledInside, false, 'never told inside the call');
      assert.deepEqual(told2, late.whenDurable === undefined ? [] : [2]);
    }));

  it('a failed engine write is dropped from the pending map and fails the writes built on it, not later ones', async () => {
    class FailingEngine extends MemoryEngine {
      failNext = 0;
      private gate: (() => void) | undefined;
      held = false;
      hold(): void {
        this.held = true;
      }
      open(): void {
        this.held = false;
        this.gate?.();
      }
      override async put(key: Uint8Array, value: Uint8Array, meta?: Uint8Array): Promise<void> {
        if (this.held) await new Promise<void>((resolve) => (this.gate = resolve));
        if (this.failNext > 0) {
          this.failNext--;
          throw new IoError('Cannot append to the WAL: disk full (test)');
        }
        return super.put(key, value, meta);
      }
    }
    const engine = new FailingEngine();
    const store = new ReplicaStore({ engine: engine as Engine, clock: new VirtualClock(), nodeId: 'n1' });
    const key = utf8('k');
    await (await store.coordinatePut(key, utf8('stored'), null, { overwrite: true })).durable;
    engine.hold();
    engine.failNext = 1;
    const failing = await store.coordinatePut(key, utf8('lost'), null, { overwrite: true });
    const builtOn = await store.coordinatePut(key, utf8('after'), null);
    assert.deepEqual(valuesOf(builtOn.object), ['after', 'lost'], 'built on the pending write');
    engine.open();
    await assert.rejects(failing.durable, (e: unknown) => e instanceof IoError && /disk full/.test(e.message));
    await assert.rejects(builtOn.durable, (e: unknown) => e instanceof IoError && /an earlier write of it on n1 failed/.test(e.message));
    // Nothing of the failed writes remains: a new write builds on what the engine stored.
    const next = await store.coordinatePut(key, utf8('next'), null);
    await next.durable;
    assert.deepEqual(valuesOf(next.object), ['next', 'stored']);
    assert.deepEqual(valuesOf(await store.readRaw(key)), ['next', 'stored']);
  });
});
