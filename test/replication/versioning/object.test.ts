import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CorruptionError } from '../../../src/core/index.ts';
import {
  decodeContext,
  decodeMeta,
  decodeObject,
  encodeContext,
  encodeMeta,
  encodeObject,
  isPurgeableEntry,
  makeObject,
  mergeObjects,
  objectCovers,
  objectsEqual,
  pruneClock,
  survivorsOf,
  withDots,
  withEvent,
  type StoredObject,
  type VClock,
  type Version,
} from '../../../src/replication/index.ts';
import { clockArb, objectArb, versionFor } from './gen.ts';

const runs = { numRuns: 300 };
const dots = (o: StoredObject): string[] => o.versions.map((v) => `${v.dot.node}:${v.dot.counter}`);

/** What a coordinator does: the versions `seen` does not cover, plus the new one. */
function write(stored: StoredObject, seen: VClock, v: Version): StoredObject {
  return makeObject(withEvent(mergeClocks2(stored.context, seen), v.dot.node, v.dot.counter, 0), [...survivorsOf(stored, seen), v]);
}
function mergeClocks2(a: VClock, b: VClock): VClock {
  return mergeObjects({ context: a, versions: [] }, { context: b, versions: [] }).context;
}
const empty: StoredObject = { context: [], versions: [] };

describe('object merge laws', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(objectArb, objectArb, objectArb, (a, b, c) => {
        assert.ok(objectsEqual(mergeObjects(a, b), mergeObjects(b, a)));
        assert.ok(objectsEqual(mergeObjects(mergeObjects(a, b), c), mergeObjects(a, mergeObjects(b, c))));
        assert.ok(objectsEqual(mergeObjects(a, a), a));
      }),
      runs,
    );
  });

  it('keeps every version the other side has not seen', () => {
    fc.assert(
      fc.property(objectArb, objectArb, (a, b) => {
        const m = dots(mergeObjects(a, b));
        for (const v of a.versions) if (!b.context.some((e) => e.node === v.dot.node && e.counter >= v.dot.counter)) assert.ok(m.includes(`${v.dot.node}:${v.dot.counter}`));
        assert.ok(objectCovers(mergeObjects(a, b), a) && objectCovers(mergeObjects(a, b), b));
      }),
      runs,
    );
  });

  it('pruning a context can only keep more versions after a merge, never fewer', () => {
    fc.assert(
      fc.property(objectArb, objectArb, fc.integer({ min: 0, max: 6 }), (a, b, now) => {
        const keep = new Set(a.versions.map((v) => v.dot.node));
        const pruned = { context: pruneClock(a.context, now, keep, { softEntries: 0, maxEntries: 1, oldAgeMs: 1 }), versions: a.versions };
        const full = dots(mergeObjects(a, b));
        const afterPrune = dots(mergeObjects(pruned, b));
        for (const d of full) assert.ok(afterPrune.includes(d), `pruning lost ${d}`);
      }),
      runs,
    );
  });
});

describe('sibling resolution', () => {
  const x1 = versionFor('x', 1);
  const y1 = versionFor('y', 1);

  it('a write that carries the context of what it read supersedes it on every replica', () => {
    const r1 = write(empty, [], { ...x1, kind: 'value' });
    const r2 = write(r1, r1.context, { ...versionFor('y', 2), dot: { node: 'y', counter: 2 } });
    assert.deepEqual(dots(mergeObjects(r1, r2)), ['y:2']);
    assert.deepEqual(dots(mergeObjects(r2, r1)), ['y:2']);
  });

  it('concurrent blind writes on two replicas both survive as siblings until a write with their context', () => {
    const onX = write(empty, [], x1);
    const onY = write(empty, [], y1);
    const merged = mergeObjects(onX, onY);
    assert.deepEqual(dots(merged), ['x:1', 'y:1']);
    const resolved = write(merged, merged.context, versionFor('x', 2));
    assert.deepEqual(dots(resolved), ['x:2']);
    // A stale replica still holding y:1 cannot bring it back.
    assert.deepEqual(dots(mergeObjects(onY, resolved)), ['x:2']);
  });

  it('a write with a partial context keeps the versions it did not see (no lost update)', () => {
    const first = write(empty, [], x1);
    const second = write(first, [], versionFor('x', 2)); // blind: concurrent with x:1
    const third = write(second, first.context, versionFor('x', 3)); // saw only x:1
    assert.deepEqual(dots(third), ['x:2', 'x:3']);
  });

  it('a duplicate delivery changes nothing', () => {
    const a = write(empty, [], x1);
    const m = mergeObjects(a, a);
    assert.ok(objectsEqual(m, a));
  });
});

describe('object codec', () => {
  it('round-trips any object', () => {
    fc.assert(
      fc.property(objectArb, (o) => {
        const bytes = encodeObject(o);
        assert.equal(bytes[0], 1, 'format version byte');
        assert.ok(objectsEqual(decodeObject(bytes), o));
        assert.deepEqual(decodeObject(bytes), decodeObject(encodeObject(decodeObject(bytes))));
      }),
      runs,
    );
  });

  it('keeps large counters, unicode node ids and binary values exact', () => {
    const v: Version = {
      dot: { node: 'nœud-1', counter: 2 ** 52 },
      kind: 'counter',
      value: new Uint8Array(0),
      counter: [{ node: 'nœud-1', epoch: 2 ** 40, p: (1n << 64n) - 1n, n: 5n }],
      expiresAtMs: 1_700_000_000_123.5,
      timestampMs: 1_700_000_000_000 + 3 / 1024,
      deletedAtMs: null,
    };
    const value: Version = { ...versionFor('b', 1), kind: 'value', value: Uint8Array.from([0, 255, 10, 13]), deletedAtMs: null };
    const o = makeObject([], [v, value]);
    assert.deepEqual(decodeObject(encodeObject(o)), o);
  });

  it('rejects every truncation and garbage with CorruptionError', () => {
    fc.assert(
      fc.property(objectArb, (o) => {
        const bytes = encodeObject(o);
        for (let cut = 0; cut < bytes.length; cut++) assert.throws(() => decodeObject(bytes.subarray(0, cut)), CorruptionError);
        assert.throws(() => decodeObject(Buffer.concat([bytes, Buffer.from([0])])), CorruptionError);
      }),
      { numRuns: 60 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
        try {
          const o = decodeObject(garbage);
          assert.deepEqual(encodeObject(o), Uint8Array.from(garbage), 'whatever decodes is canonical');
        } catch (error) {
          assert.ok(error instanceof CorruptionError, `unexpected ${String(error)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a flipped byte never crashes the decoder', () => {
    fc.assert(
      fc.property(objectArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (o, at, xor) => {
        const bytes = Buffer.from(encodeObject(o));
        const i = at % bytes.length;
        bytes[i] = (bytes[i] as number) ^ xor;
        try {
          decodeObject(bytes);
        } catch (error) {
          assert.ok(error instanceof CorruptionError, `unexpected ${String(error)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses an unknown format version', () => {
    const bytes = Buffer.from(encodeObject(makeObject([], [versionFor('a', 1)])));
    bytes[0] = 2;
    assert.throws(() => decodeObject(bytes), /unknown format version 2/);
  });

  it('contexts round-trip and garbage contexts are CorruptionError', () => {
    fc.assert(
      fc.property(clockArb, (c) => {
        assert.deepEqual(decodeContext(encodeContext(c)), c);
      }),
      runs,
    );
    const withExact = withDots([{ node: 'a', counter: 2, lastWallMs: 0 }], [{ node: 'b', counter: 9 }, { node: 'a', counter: 7 }]);
    const back = decodeContext(encodeContext(withExact));
    assert.deepEqual([...back], [...withExact]);
    assert.deepEqual(back.dots, [{ node: 'a', counter: 7 }, { node: 'b', counter: 9 }]);
    assert.throws(() => decodeContext(Uint8Array.from([...encodeContext(withExact), 0])), CorruptionError);
    assert.throws(() => decodeContext(Uint8Array.from([9, 0])), CorruptionError);
    assert.throws(() => decodeContext(Uint8Array.from([1, 1, 5, 97])), CorruptionError);
  });

  it('meta bytes carry when the whole object dies', () => {
    const tomb = versionFor('a', 1); // tombstone per the generator's pattern
    assert.equal(tomb.kind, 'tombstone');
    assert.equal(decodeMeta(encodeMeta(makeObject([], [tomb]))), tomb.deletedAtMs);
    const forever: Version = { ...versionFor('a', 5), expiresAtMs: null };
    assert.equal(encodeMeta(makeObject([], [forever, tomb])), undefined);
    const expiring: Version = { ...forever, expiresAtMs: 5 };
    assert.equal(decodeMeta(encodeMeta(makeObject([], [expiring]))), 5);
    const meta = encodeMeta(makeObject([], [expiring]));
    assert.equal(isPurgeableEntry(meta, 104, 100), false);
    assert.equal(isPurgeableEntry(meta, 105, 100), true);
    assert.equal(isPurgeableEntry(undefined, 1e15, 100), false);
  });
});
