/**
 * The object codec's and merge's allocation-saving fast paths (node table
 * without a Set or a sort, makeObject leaving normalized input as it is,
 * same-dot ties decided field by field) must give exactly what the plain
 * algorithms give: these reference copies are the code before those fast
 * paths, and the bytes on disk and on the wire must not change.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes } from '../../../src/core/index.ts';
import { clockFrom, decodeObject, encodeObject, encodedObjectBytes, makeObject, mergeClocks, mergeObjects, coversDot } from '../../../src/replication/index.ts';
import type { ClockEntry, CounterLane, StoredObject, VClock, Version } from '../../../src/replication/index.ts';
import { counterArb, objectArb, versionFor } from './gen.ts';

const runs = { numRuns: 400 };

// ------------------------------------------------------------ reference encoder (format version 1, docs/formats/object.md)

class RefWriter {
  readonly bytes: number[] = [];
  varint(v: number): void {
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }
  bigVarint(v: bigint): void {
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  f64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.bytes.push(...b);
  }
  raw(b: Uint8Array): void {
    this.varint(b.length);
    this.bytes.push(...b);
  }
}

const kindCodes = { value: 1, counter: 2, tombstone: 3 } as const;

function refWriteVersion(w: RefWriter, v: Version, index: Map<string, number>): void {
  w.bytes.push(kindCodes[v.kind], (v.expiresAtMs !== null ? 1 : 0) | (v.deletedAtMs !== null ? 2 : 0));
  w.varint(index.get(v.dot.node) as number);
  w.varint(v.dot.counter);
  w.f64(v.timestampMs);
  if (v.expiresAtMs !== null) w.f64(v.expiresAtMs);
  if (v.deletedAtMs !== null) w.f64(v.deletedAtMs);
  if (v.kind === 'value') w.raw(v.value);
  if (v.kind === 'counter') {
    w.varint(v.counter.length);
    for (const lane of v.counter) {
      w.varint(index.get(lane.node) as number);
      w.varint(lane.epoch);
      w.bigVarint(lane.p);
      w.bigVarint(lane.n);
    }
  }
}

function refEncode(object: StoredObject): Uint8Array {
  const names = new Set<string>();
  for (const e of object.context) names.add(e.node);
  for (const v of object.versions) {
    names.add(v.dot.node);
    for (const lane of v.counter) names.add(lane.node);
  }
  const nodes = [...names].sort();
  const index = new Map(nodes.map((n, i) => [n, i]));
  const w = new RefWriter();
  w.bytes.push(1);
  w.varint(nodes.length);
  for (const n of nodes) w.raw(Buffer.from(n, 'utf8'));
  w.varint(object.context.length);
  for (const e of object.context) {
    w.varint(index.get(e.node) as number);
    w.varint(e.counter);
    w.varint(Math.max(0, Math.floor(e.lastWallMs)));
  }
  w.varint(object.versions.length);
  for (const v of object.versions) refWriteVersion(w, v, index);
  return Uint8Array.from(w.bytes);
}

// ------------------------------------------------------------ reference merge

function cmpDot(a: Version, b: Version): number {
  if (a.dot.node !== b.dot.node) return a.dot.node < b.dot.node ? -1 : 1;
  return a.dot.counter - b.dot.counter;
}

function refTie(v: Version): Uint8Array {
  const names = [...new Set([v.dot.node, ...v.counter.map((l) => l.node)])].sort();
  const index = new Map(names.map((n, i) => [n, i]));
  const w = new RefWriter();
  for (const n of names) w.raw(Buffer.from(n, 'utf8'));
  refWriteVersion(w, v, index);
  return Uint8Array.from(w.bytes);
}

function refPick(a: Version, b: Version): Version {
  return a === b || compareBytes(refTie(a), refTie(b)) >= 0 ? a : b;
}

function refMakeObject(context: VClock, versions: readonly Version[]): StoredObject {
  const sorted = [...versions].sort(cmpDot);
  const unique: Version[] = [];
  for (const v of sorted) {
    const last = unique[unique.length - 1];
    if (last !== undefined && cmpDot(last, v) === 0) unique[unique.length - 1] = refPick(last, v);
    else unique.push(v);
  }
  let ctx = context;
  for (const v of unique) if (!coversDot(ctx, v.dot)) ctx = mergeClocks(ctx, [{ node: v.dot.node, counter: v.dot.counter, lastWallMs: Math.floor(v.timestampMs) }]);
  return { context: ctx, versions: unique };
}

function refMerge(a: StoredObject, b: StoredObject): StoredObject {
  const out: Version[] = [];
  let i = 0;
  let j = 0;
  while (i < a.versions.length || j < b.versions.length) {
    const x = a.versions[i];
    const y = b.versions[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : cmpDot(x, y);
    if (c === 0) {
      out.push(refPick(x as Version, y as Version));
      i++;
      j++;
    } else if (c < 0) {
      if (!coversDot(b.context, (x as Version).dot)) out.push(x as Version);
      i++;
    } else {
      if (!coversDot(a.context, (y as Version).dot)) out.push(y as Version);
      j++;
    }
  }
  return { context: mergeClocks(a.context, b.context), versions: out };
}

// ------------------------------------------------------------ generators

/** Counter versions whose lanes name nodes the context does not (an unsorted node table before the sort). */
const laneMixArb: fc.Arbitrary<StoredObject> = fc.tuple(objectArb, fc.array(counterArb, { minLength: 1, maxLength: 4 })).map(([o, states]) => ({
  context: o.context,
  versions: o.versions.map((v, i) => (v.kind === 'counter' ? { ...v, counter: states[i % states.length] as readonly CounterLane[] } : v)),
}));

/** Large counters, wall times, values and non-ASCII node names: every varint and text length class. */
const bigArb: fc.Arbitrary<StoredObject> = fc
  .record({
    node: fc.constantFrom('a', 'nœud-é', 'x'.repeat(130), 'b'),
    counter: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
    wall: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    valueBytes: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 16000, max: 20000 })),
    p: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  })
  .map(({ node, counter, wall, valueBytes, p }) => {
    const base = versionFor(node, counter);
    const value: Version = { ...base, kind: 'value', value: new Uint8Array(valueBytes).fill(7), counter: [], deletedAtMs: null };
    const lanes: Version = { ...versionFor('b', 1), kind: 'counter', value: new Uint8Array(0), counter: [{ node: 'c', epoch: counter, p, n: p / 3n }], deletedAtMs: null };
    return makeObject(clockFrom([{ node, counter, lastWallMs: wall }]), [value, lanes]);
  });

/** Clocks past the linear-scan limit (up to 30 nodes), with versions of some of them. */
const wideArb: fc.Arbitrary<StoredObject> = fc
  .tuple(fc.uniqueArray(fc.integer({ min: 0, max: 29 }), { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }))
  .map(([ids, keep]) => {
    const context = clockFrom(ids.map((i): ClockEntry => ({ node: `w${String(i).padStart(2, '0')}`, counter: 1 + (i % 3), lastWallMs: i })));
    const versions = context.filter((_, i) => keep[i]).map((e) => versionFor(e.node, e.counter));
    return makeObject(context, versions);
  });

/** The same versions decoded separately (other objects, equal fields), as a replica merging what it stores with what arrives. */
const copyOf = (o: StoredObject): StoredObject => decodeObject(encodeObject(o));

const anyObjectArb = fc.oneof(objectArb, laneMixArb, wideArb, bigArb);

describe('codec and merge fast paths match the plain algorithms', () => {
  it('encodeObject gives the reference encoder bytes', () => {
    fc.assert(
      fc.property(anyObjectArb, (o) => {
        const bytes = encodeObject(o);
        assert.deepEqual(Buffer.from(bytes), Buffer.from(refEncode(o)));
        // The buffer is sized exactly up front (no copy on growth, no second view).
        assert.equal(encodedObjectBytes(o), bytes.length);
      }),
      runs,
    );
  });

  it('decode then encode gives the same bytes back', () => {
    fc.assert(
      fc.property(anyObjectArb, (o) => {
        const bytes = refEncode(o);
        assert.deepEqual(Buffer.from(encodeObject(decodeObject(bytes))), Buffer.from(bytes));
      }),
      runs,
    );
  });

  it('makeObject matches the reference on shuffled, duplicated and uncovered versions', () => {
    fc.assert(
      fc.property(anyObjectArb, anyObjectArb, fc.boolean(), (a, b, reverse) => {
        const versions = [...a.versions, ...copyOf(b).versions, ...b.versions];
        if (reverse) versions.reverse();
        const context = reverse ? a.context : b.context;
        assert.deepEqual(Buffer.from(encodeObject(makeObject(context, versions))), Buffer.from(refEncode(refMakeObject(context, versions))));
        // Already normalized input is kept as it is.
        assert.deepEqual(Buffer.from(encodeObject(makeObject(a.context, a.versions))), Buffer.from(refEncode(a)));
      }),
      runs,
    );
  });

  it('mergeObjects matches the reference, also with equal versions decoded twice', () => {
    fc.assert(
      fc.property(anyObjectArb, anyObjectArb, (a, b) => {
        for (const [x, y] of [
          [a, b],
          [b, a],
          [a, copyOf(a)],
          [copyOf(b), a],
        ] as const) {
          assert.deepEqual(Buffer.from(encodeObject(mergeObjects(x, y))), Buffer.from(refEncode(refMerge(x, y))));
        }
      }),
      runs,
    );
  });

  it('a same-dot tie between versions that differ still picks the larger encoding, in either order', () => {
    const a = versionFor('a', 3);
    const b: Version = { ...a, timestampMs: a.timestampMs + 1 };
    const oa = makeObject([{ node: 'a', counter: 3, lastWallMs: 0 }], [a]);
    const ob = makeObject([{ node: 'a', counter: 3, lastWallMs: 0 }], [b]);
    const expected = compareBytes(refTie(a), refTie(b)) >= 0 ? a : b;
    assert.equal(mergeObjects(oa, ob).versions[0], expected);
    assert.equal(mergeObjects(ob, oa).versions[0], expected);
    // 0 and -0 encode differently, so they are not "the same version".
    const z: Version = { ...a, timestampMs: 0 };
    const nz: Version = { ...a, timestampMs: -0 };
    const za = makeObject([{ node: 'a', counter: 3, lastWallMs: 0 }], [z]);
    const zb = makeObject([{ node: 'a', counter: 3, lastWallMs: 0 }], [nz]);
    const zExpected = compareBytes(refTie(z), refTie(nz)) >= 0 ? z : nz;
    assert.ok(Object.is(mergeObjects(za, zb).versions[0]?.timestampMs, zExpected.timestampMs));
    assert.ok(Object.is(mergeObjects(zb, za).versions[0]?.timestampMs, zExpected.timestampMs));
  });
});
