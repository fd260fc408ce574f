/**
 * ReplicaStore.readEncoded gives exactly the bytes encodeObject(read(key))
 * would, whichever path answers (engine bytes as stored, the object cache,
 * a re-encode after expiry), and encodedHasExpired agrees with a decode.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, VirtualClock, silentLogger, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine, openLsm } from '../../../src/storage/index.ts';
import type { Engine } from '../../../src/storage/index.ts';
import { ReplicaStore, decodeObject, encodeObject, encodedHasExpired, isLive } from '../../../src/replication/index.ts';
import { objectArb } from './gen.ts';
import { GatedSyncFileSystem, settle } from './gated-fs.ts';

async function expectSame(store: ReplicaStore, key: Uint8Array, what: string): Promise<Uint8Array | undefined> {
  const got = await store.readEncoded(key);
  const object = await store.read(key);
  const want = object === undefined ? undefined : encodeObject(object);
  if (want === undefined) assert.equal(got, undefined, `${what}: absent`);
  else {
    assert.ok(got !== undefined, `${what}: present`);
    assert.deepEqual(Buffer.from(got), Buffer.from(want), `${what}: bytes`);
  }
  return got;
}

const engines: Array<[string, () => Promise<Engine>]> = [
  ['MemoryEngine', async () => new MemoryEngine()],
  ['LsmEngine', async () => openLsm('/db', { sync: 'none', memtableBytes: 64 * 1024 }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger })],
];

for (const [name, make] of engines) {
  describe(`ReplicaStore.readEncoded over ${name}`, () => {
    it('matches encodeObject(read) for absent, plain, siblings, counters, tombstones and expired versions', async () => {
      const engine = await make();
      const clock = new VirtualClock();
      const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
      const other = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'n2' });
      try {
        assert.equal(await expectSame(store, utf8('absent'), 'absent'), undefined);

        await (await store.coordinatePut(utf8('plain'), utf8('v1'), null)).durable;
        const plain = await expectSame(store, utf8('plain'), 'plain');
        assert.deepEqual(decodeObject(plain as Uint8Array).versions.map((v) => Buffer.from(v.value).toString()), ['v1']);

        // Siblings: a blind write beside a version from another replica.
        await (await store.coordinatePut(utf8('sib'), utf8('a'), null)).durable;
        await store.apply(utf8('sib'), (await (await other.coordinatePut(utf8('sib'), utf8('b'), null)).object));
        const sib = await expectSame(store, utf8('sib'), 'siblings');
        assert.equal(decodeObject(sib as Uint8Array).versions.length, 2);

        await (await store.coordinateIncr(utf8('ctr'), 5n)).durable;
        await expectSame(store, utf8('ctr'), 'counter');

        await (await store.coordinatePut(utf8('gone'), utf8('x'), null)).durable;
        await (await store.coordinateDelete(utf8('gone'), null)).durable;
        const tomb = await expectSame(store, utf8('gone'), 'tombstone');
        assert.deepEqual(decodeObject(tomb as Uint8Array).versions.map((v) => v.kind), ['tombstone']);

        // One sibling expiring, one not: after the expiry the bytes lose the expired one.
        const now = clock.wallMs();
        await (await store.coordinatePut(utf8('exp'), utf8('short'), null, { expiresAtMs: now + 1000 })).durable;
        await store.apply(utf8('exp'), (await (await other.coordinatePut(utf8('exp'), utf8('long'), null)).object));
        await (await store.coordinatePut(utf8('all-exp'), utf8('short'), null, { expiresAtMs: now + 1000 })).durable;
        const before = await expectSame(store, utf8('exp'), 'expiring, before');
        assert.equal(decodeObject(before as Uint8Array).versions.length, 2);
        await clock.advance(1000);
        const after = await expectSame(store, utf8('exp'), 'one expired');
        assert.deepEqual(decodeObject(after as Uint8Array).versions.map((v) => Buffer.from(v.value).toString()), ['long']);
        const allGone = await expectSame(store, utf8('all-exp'), 'all expired');
        assert.equal(decodeObject(allGone as Uint8Array).versions.length, 0);

        // Through the object cache: reads admit a key after a few misses.
        for (let i = 0; i < 20; i++) await store.read(utf8('plain'));
        for (let i = 0; i < 20; i++) await store.read(utf8('exp'));
        await expectSame(store, utf8('plain'), 'plain, cached');
        await expectSame(store, utf8('exp'), 'one expired, cached');
        await (await store.coordinatePut(utf8('plain'), utf8('v2'), null, { overwrite: true })).durable;
        const rewritten = await expectSame(store, utf8('plain'), 'rewritten, cached');
        assert.deepEqual(decodeObject(rewritten as Uint8Array).versions.map((v) => Buffer.from(v.value).toString()), ['v2']);
      } finally {
        await engine.close();
      }
    });
  });
}

describe('ReplicaStore.readEncoded with a write not yet durable', () => {
  it('answers the durable object, as read does, until the fsync completes', async () => {
    const fs = new GatedSyncFileSystem();
    const engine = await openLsm('/db', { sync: 'always' }, { fs, clock: new RealClock(), log: silentLogger });
    const store = new ReplicaStore({ engine, clock: new VirtualClock(), nodeId: 'n1' });
    const key = utf8('k');
    try {
      await (await store.coordinatePut(key, utf8('old'), null)).durable;
      fs.gated = true;
      const outcome = await store.coordinatePut(key, utf8('new'), null, { overwrite: true });
      await settle();
      const pendingBytes = await expectSame(store, key, 'pending');
      assert.deepEqual(decodeObject(pendingBytes as Uint8Array).versions.map((v) => Buffer.from(v.value).toString()), ['old']);
      fs.release();
      await outcome.durable;
      await settle();
      const durableBytes = await expectSame(store, key, 'durable');
      assert.deepEqual(decodeObject(durableBytes as Uint8Array).versions.map((v) => Buffer.from(v.value).toString()), ['new']);
    } finally {
      fs.release();
      await engine.close();
    }
  });
});

describe('encodedHasExpired', () => {
  it('agrees with decoding for any object and time', () => {
    fc.assert(
      fc.property(objectArb, fc.integer({ min: 1_700_000_099_990, max: 1_700_000_100_100 }), (object, now) => {
        const bytes = encodeObject(object);
        assert.equal(encodedHasExpired(bytes, now), object.versions.some((v) => !isLive(v, now)));
      }),
      { numRuns: 300 },
    );
  });

  it('answers true for bytes it cannot walk, so the caller decodes and reports them', () => {
    const bytes = encodeObject({ context: [{ node: 'a', counter: 1, lastWallMs: 0 }], versions: [] });
    assert.equal(encodedHasExpired(bytes, 0), false);
    assert.equal(encodedHasExpired(bytes.subarray(0, bytes.length - 1), 0), true);
    assert.equal(encodedHasExpired(Buffer.concat([bytes, Buffer.from([0])]), 0), true);
    assert.equal(encodedHasExpired(new Uint8Array(0), 0), true);
  });
});
