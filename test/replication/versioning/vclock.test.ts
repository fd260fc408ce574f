import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  clocksEqual,
  compareClocks,
  counterOf,
  coversDot,
  descends,
  mergeClocks,
  pruneClock,
  withEvent,
  type VClock,
} from '../../../src/replication/index.ts';
import { clockArb } from './gen.ts';

const runs = { numRuns: 300 };

describe('vector clock laws', () => {
  it('merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        assert.ok(clocksEqual(mergeClocks(a, b), mergeClocks(b, a)));
        assert.ok(clocksEqual(mergeClocks(mergeClocks(a, b), c), mergeClocks(a, mergeClocks(b, c))));
        assert.ok(clocksEqual(mergeClocks(a, a), a));
      }),
      runs,
    );
  });

  it('merge is the least upper bound: it descends both inputs and nothing smaller does', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const m = mergeClocks(a, b);
        assert.ok(descends(m, a) && descends(m, b));
        for (const e of m) assert.equal(e.counter, Math.max(counterOf(a, e.node), counterOf(b, e.node)));
      }),
      runs,
    );
  });

  it('descends is a partial order (reflexive, antisymmetric, transitive)', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        assert.ok(descends(a, a));
        if (descends(a, b) && descends(b, a)) assert.equal(compareClocks(a, b), 'equal');
        if (descends(a, b) && descends(b, c)) assert.ok(descends(a, c));
      }),
      runs,
    );
  });

  it('compare is consistent with descends and antisymmetric', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const ab = compareClocks(a, b);
        const ba = compareClocks(b, a);
        const mirror = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;
        assert.equal(ba, mirror[ab]);
        assert.equal(ab === 'after' || ab === 'equal', descends(a, b));
      }),
      runs,
    );
  });

  it('an event makes the clock strictly later and covers exactly that dot', () => {
    fc.assert(
      fc.property(clockArb, fc.constantFrom('a', 'b', 'z'), (a, node) => {
        const next = withEvent(a, node, counterOf(a, node) + 1, 9);
        assert.equal(compareClocks(next, a), 'after');
        assert.ok(coversDot(next, { node, counter: counterOf(a, node) + 1 }));
        assert.ok(!coversDot(a, { node, counter: counterOf(a, node) + 1 }));
      }),
      runs,
    );
  });

  it('concrete orders', () => {
    const a: VClock = [{ node: 'x', counter: 1, lastWallMs: 0 }];
    const b: VClock = [{ node: 'x', counter: 1, lastWallMs: 0 }, { node: 'y', counter: 1, lastWallMs: 0 }];
    const c: VClock = [{ node: 'z', counter: 1, lastWallMs: 0 }];
    assert.equal(compareClocks(a, b), 'before');
    assert.equal(compareClocks(b, a), 'after');
    assert.equal(compareClocks(b, c), 'concurrent');
    assert.equal(compareClocks([], []), 'equal');
  });
});

describe('clock pruning', () => {
  const day = 24 * 60 * 60 * 1000;
  const policy = { softEntries: 4, maxEntries: 8, oldAgeMs: day };
  const big = (n: number, wall: (i: number) => number): VClock =>
    Array.from({ length: n }, (_, i) => ({ node: `n${String(i).padStart(2, '0')}`, counter: i + 1, lastWallMs: wall(i) }));

  it('leaves clocks at or below the soft size alone, however old', () => {
    const clock = big(4, () => 0);
    assert.equal(pruneClock(clock, 10 * day, new Set(), policy), clock);
  });

  it('between soft and max size drops only entries idle for longer than the age, oldest first', () => {
    const now = 10 * day;
    const clock = big(7, (i) => (i < 2 ? 0 : now));
    const pruned = pruneClock(clock, now, new Set(), policy);
    assert.deepEqual(pruned.map((e) => e.node), ['n02', 'n03', 'n04', 'n05', 'n06']);
  });

  it('past the max size drops the oldest entries whatever their age, but never a kept node', () => {
    const now = 10 * day;
    const clock = big(12, (i) => now - 100 + i);
    const pruned = pruneClock(clock, now, new Set(['n00']), policy);
    assert.equal(pruned.length, 8);
    assert.ok(pruned.some((e) => e.node === 'n00'), 'the entry of a live version is kept');
    assert.deepEqual(pruned.slice(1).map((e) => e.node), ['n05', 'n06', 'n07', 'n08', 'n09', 'n10', 'n11']);
  });

  it('a pruned clock never covers an event the full clock did not', () => {
    fc.assert(
      fc.property(clockArb, fc.integer({ min: 0, max: 10 }), (clock, now) => {
        const pruned = pruneClock(clock, now, new Set(['a']), { softEntries: 1, maxEntries: 2, oldAgeMs: 2 });
        assert.ok(descends(clock, pruned));
        assert.equal(counterOf(pruned, 'a'), counterOf(clock, 'a'));
      }),
      runs,
    );
  });
});
