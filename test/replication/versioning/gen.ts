/** fast-check generators for the versioning tests: clocks, counters and well-formed objects. */
import fc from 'fast-check';
import { clockFrom, makeObject } from '../../../src/replication/index.ts';
import type { ClockEntry, CounterLane, CounterState, StoredObject, VClock, Version } from '../../../src/replication/index.ts';

export const nodes = ['a', 'b', 'c', 'd', 'node-e'];

export const clockArb: fc.Arbitrary<VClock> = fc
  .array(
    fc.record({
      node: fc.constantFrom(...nodes),
      counter: fc.integer({ min: 1, max: 8 }),
      lastWallMs: fc.integer({ min: 0, max: 5 }),
    }),
    { maxLength: 6 },
  )
  .map((entries: ClockEntry[]) => clockFrom(entries.map((e) => ({ ...e }))));

export const laneArb: fc.Arbitrary<CounterLane> = fc.record({
  node: fc.constantFrom(...nodes),
  epoch: fc.integer({ min: 1, max: 3 }),
  p: fc.bigInt({ min: 0n, max: 1n << 40n }),
  n: fc.bigInt({ min: 0n, max: 1n << 40n }),
}).map((l) => ({ ...l }));

/** Lane-wise max of duplicates keeps a well-formed state (sorted, one lane per (node, epoch)). */
export const counterArb: fc.Arbitrary<CounterState> = fc.array(laneArb, { maxLength: 6 }).map((lanes) => {
  const byKey = new Map<string, CounterLane>();
  for (const l of lanes) {
    const k = `${l.node}\u0000${l.epoch}`;
    const prev = byKey.get(k);
    byKey.set(k, prev === undefined ? l : { ...l, p: prev.p > l.p ? prev.p : l.p, n: prev.n > l.n ? prev.n : l.n });
  }
  return [...byKey.values()].sort((x, y) => (x.node !== y.node ? (x.node < y.node ? -1 : 1) : x.epoch - y.epoch));
});

/**
 * The version a dot stands for. Fixed per dot, as in a real cluster where a
 * dot is written once by its coordinator and only copied afterwards.
 */
export function versionFor(node: string, counter: number): Version {
  const kind = (['value', 'counter', 'tombstone'] as const)[(counter + node.length) % 3] as Version['kind'];
  const timestampMs = 1_700_000_000_000 + counter * 7 + node.charCodeAt(0) / 1024;
  return {
    dot: { node, counter },
    kind,
    value: kind === 'value' ? Buffer.from(`${node}:${counter}`) : new Uint8Array(0),
    counter: kind === 'counter' ? [{ node, epoch: 1, p: BigInt(counter * 3), n: BigInt(counter) }] : [],
    expiresAtMs: counter % 4 === 0 ? 1_700_000_100_000 + counter : null,
    timestampMs,
    deletedAtMs: kind === 'tombstone' ? 1_700_000_000_000 + counter : null,
  };
}

/** An object as a replica could hold it: a context and some of the dots it covers. */
export const objectArb: fc.Arbitrary<StoredObject> = fc
  .tuple(clockArb, fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }))
  .map(([context, keep]) => {
    const versions: Version[] = [];
    let bit = 0;
    for (const e of context) {
      for (let k = 1; k <= e.counter; k++) if (keep[bit++ % keep.length]) versions.push(versionFor(e.node, k));
    }
    return makeObject(context, versions);
  });
