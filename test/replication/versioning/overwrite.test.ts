/**
 * The single-node plain SET (ReplicaStore.overwriteNow): its in-place read
 * of the superseded object (peekSoleNodeBase) and its direct encoder
 * (encodeSoleValue) must agree with decodeSupersededBase and encodeObject,
 * and the write must store exactly what the general overwrite stores.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, VirtualClock, silentLogger, utf8 } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import {
  ReplicaStore,
  decodeSupersededBase,
  durableNow,
  encodeObject,
  encodeSoleValue,
  makeObject,
  peekSoleNodeBase,
  soleNodeBytes,
  storageKey,
  wouldWait,
} from '../../../src/replication/index.ts';
import type { SoleNodeBase, StoredObject, Version } from '../../../src/replication/index.ts';
import { objectArb, versionFor } from './gen.ts';

const node = 'b';
const nodeBytes = soleNodeBytes(node) as Uint8Array;

/** Objects only `node` wrote: its clock entry and any of the versions it covers (values, counters, tombstones, expiring ones). */
const soleNodeArb: fc.Arbitrary<StoredObject> = fc
  .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1 << 30 }), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }))
  .map(([counter, lastWallMs, keep]) => {
    const versions: Version[] = [];
    for (let k = 1; k <= counter; k++) if (keep[k - 1]) versions.push(versionFor(node, k));
    return makeObject([{ node, counter, lastWallMs }], versions);
  });

const anyStoredArb = fc.oneof(soleNodeArb, objectArb, fc.constant(makeObject([], [])));

describe('encodeSoleValue', () => {
  it('is encodeObject of the one-version, one-node object', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.double({ min: 0, max: 2 ** 45, noNaN: true }),
        fc.uint8Array({ maxLength: 300 }),
        fc.option(fc.double({ min: 0, max: 2 ** 45, noNaN: true }), { nil: null }),
        (counter, lastWallMs, timestampMs, value, expiresAtMs) => {
          const object: StoredObject = {
            context: [{ node, counter, lastWallMs }],
            versions: [{ dot: { node, counter }, timestampMs, kind: 'value', value, counter: [], expiresAtMs, deletedAtMs: null }],
          };
          assert.deepEqual(Buffer.from(encodeSoleValue(nodeBytes, counter, lastWallMs, timestampMs, value, expiresAtMs)), Buffer.from(encodeObject(object)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is offered only for short ASCII node ids', () => {
    assert.deepEqual(soleNodeBytes('n1'), Buffer.from('n1'));
    assert.equal(soleNodeBytes('nœud'), undefined);
    assert.equal(soleNodeBytes('x'.repeat(128)), undefined);
  });
});

describe('peekSoleNodeBase', () => {
  it('reads what decodeSupersededBase reads for objects only this node wrote, and declines the others', () => {
    fc.assert(
      fc.property(anyStoredArb, (object) => {
        const bytes = encodeObject(object);
        const into: SoleNodeBase = { counter: -1, lastWallMs: -1, newestTimestampMs: -1 };
        const read = peekSoleNodeBase(bytes, nodeBytes, into);
        const onlyNode = object.context.every((e) => e.node === node) && object.versions.every((v) => v.dot.node === node && v.kind !== 'counter');
        const named = object.context.length > 0 || object.versions.length > 0;
        assert.equal(read, onlyNode && named, 'read exactly the objects whose node table is this node alone (counters decode)');
        if (!read) return;
        const base = decodeSupersededBase(bytes);
        assert.equal(into.counter, base.context[0]?.counter ?? 0);
        assert.equal(into.lastWallMs, base.context[0]?.lastWallMs ?? 0);
        assert.equal(into.newestTimestampMs, base.newestTimestampMs);
      }),
      { numRuns: 1000 },
    );
  });

  it('never reads bytes decodeSupersededBase rejects, and agrees with it on those it accepts', () => {
    fc.assert(
      fc.property(soleNodeArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (object, at, byte) => {
        const bytes = Buffer.from(encodeObject(object));
        const variants = [Buffer.concat([bytes, Buffer.from([byte])])];
        for (let cut = 0; cut < bytes.length; cut++) variants.push(bytes.subarray(0, cut));
        const changed = Buffer.from(bytes);
        changed[at % changed.length] = byte;
        variants.push(changed);
        for (const v of variants) {
          const into: SoleNodeBase = { counter: -1, lastWallMs: -1, newestTimestampMs: -1 };
          if (!peekSoleNodeBase(v, nodeBytes, into)) continue;
          const base = decodeSupersededBase(v);
          assert.equal(into.counter, base.context.find((e) => e.node === node)?.counter ?? 0);
          assert.equal(into.newestTimestampMs, base.newestTimestampMs);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('ReplicaStore.overwriteNow', () => {
  it('stores what the general overwrite stores, whatever was stored before', async () => {
    const open = (): Promise<Awaited<ReturnType<typeof openLsm>>> => openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    await fc.assert(
      fc.asyncProperty(
        fc.option(anyStoredArb, { nil: undefined }),
        fc.option(fc.integer({ min: 1_700_000_100_000, max: 1_700_000_200_000 }), { nil: null }),
        fc.array(fc.constantFrom('set', 'set', 'set', 'incr', 'del', 'apply', 'touch'), { minLength: 1, maxLength: 8 }),
        async (stored, expiresAtMs, ops) => {
          const clock = new VirtualClock({ startMs: 50_000 });
          const [engineA, engineB] = [await open(), await open()];
          try {
            const general = new ReplicaStore({ engine: engineA, clock, nodeId: node });
            const now = new ReplicaStore({ engine: engineB, clock, nodeId: node });
            if (stored !== undefined && stored.versions.length > 0) {
              await general.apply(utf8('k'), stored);
              await now.apply(utf8('k'), stored);
            }
            for (let i = 0; i < ops.length; i++) {
              const op = ops[i];
              // The other writes of a key: the SET after them must not build on what the memo remembered before them.
              if (op === 'incr') {
                await Promise.all([general, now].map(async (s) => (await s.coordinateIncr(utf8('k'), 2n)).durable.catch(() => undefined)).map((p) => p.catch(() => undefined)));
                continue;
              }
              if (op === 'del') {
                await Promise.all([general, now].map(async (s) => (await s.coordinateDelete(utf8('k'), null)).durable));
                continue;
              }
              if (op === 'touch') {
                await Promise.all([general, now].map(async (s) => (await s.coordinateTouch(utf8('k'), 1_700_000_300_000, null))?.durable));
                continue;
              }
              if (op === 'apply') {
                const peer: StoredObject = makeObject([{ node: 'z', counter: 3 + i, lastWallMs: 7 }], [{ ...versionFor('z', 3 + i), kind: 'value', value: utf8('peer'), counter: [], deletedAtMs: null }]);
                await Promise.all([general.apply(utf8('k'), peer), now.apply(utf8('k'), peer)]);
                continue;
              }
              const value = utf8(`new${i}`);
              const a = await general.coordinatePut(utf8('k'), value, null, { overwrite: true, expiresAtMs });
              await a.durable;
              const b = now.overwriteNow(utf8('k'), value, expiresAtMs);
              assert.notEqual(b, wouldWait);
              if (b !== durableNow) await b;
              const bytesA = (await engineA.get(storageKey(utf8('k'))))?.value;
              const bytesB = (await engineB.get(storageKey(utf8('k'))))?.value;
              assert.ok(bytesA !== undefined && bytesB !== undefined);
              assert.deepEqual(Buffer.from(bytesB), Buffer.from(bytesA));
              assert.deepEqual((await engineB.get(storageKey(utf8('k'))))?.meta, (await engineA.get(storageKey(utf8('k'))))?.meta);
              await clock.advance(1);
            }
          } finally {
            await engineA.close();
            await engineB.close();
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});
