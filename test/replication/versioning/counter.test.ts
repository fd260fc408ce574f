import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualClock, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine } from '../../../src/storage/index.ts';
import {
  ReplicaStore,
  counterValue,
  incrementCounter,
  isIncrOverflowError,
  maxCounterValue,
  mergeCounters,
  mergedCounterValue,
  parseInteger,
  type CounterState,
} from '../../../src/replication/index.ts';
import { counterArb } from './gen.ts';

const runs = { numRuns: 300 };
const same = (a: CounterState, b: CounterState): void => assert.deepEqual(a, b);

describe('PN-counter merge', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(counterArb, counterArb, counterArb, (a, b, c) => {
        same(mergeCounters(a, b), mergeCounters(b, a));
        same(mergeCounters(mergeCounters(a, b), c), mergeCounters(a, mergeCounters(b, c)));
        same(mergeCounters(a, a), a);
      }),
      runs,
    );
  });

  it('merging a state with one derived from it by increments gives the derived state', () => {
    fc.assert(
      fc.property(counterArb, fc.array(fc.tuple(fc.constantFrom('a', 'b', 'q'), fc.bigInt({ min: -50n, max: 50n })), { maxLength: 8 }), (base, steps) => {
        let next = base;
        for (const [node, delta] of steps) next = incrementCounter(next, node, 99, delta);
        same(mergeCounters(base, next), next);
        assert.equal(counterValue(next), counterValue(base) + steps.reduce((s, [, d]) => s + d, 0n));
      }),
      runs,
    );
  });

  it('concurrent increments on different nodes all count', () => {
    const base = incrementCounter([], 'a', 1, 10n);
    const onA = incrementCounter(base, 'a', 2, 5n);
    const onB = incrementCounter(base, 'b', 3, 7n);
    assert.equal(counterValue(mergeCounters(onA, onB)), 22n);
  });

  it('a node starting afresh opens a new lane, so an old copy elsewhere does not hide its increments', () => {
    const old = incrementCounter([], 'a', 1, 10n);
    const oldPlusB = incrementCounter(old, 'b', 1, 1n);
    const fresh = incrementCounter([], 'a', 7, 1n); // after a delete on a
    assert.equal(counterValue(mergeCounters(oldPlusB, fresh)), 12n);
  });

  it('refuses to leave the signed 64-bit range like Redis', () => {
    const top = incrementCounter([], 'a', 1, maxCounterValue);
    assert.throws(() => incrementCounter(top, 'a', 1, 1n), (e: unknown) => isIncrOverflowError(e));
    assert.equal(counterValue(incrementCounter(top, 'a', 1, -1n)), maxCounterValue - 1n);
  });

  it('parses integers by Redis rules', () => {
    assert.equal(parseInteger(utf8('42')), 42n);
    assert.equal(parseInteger(utf8('-7')), -7n);
    assert.equal(parseInteger(utf8('0')), 0n);
    assert.equal(parseInteger(utf8('9223372036854775807')), maxCounterValue);
    for (const bad of ['', '+1', '01', ' 1', '1 ', '1.5', 'abc', '-0', '9223372036854775808', '-']) assert.equal(parseInteger(utf8(bad)), undefined, bad);
  });
});

describe('counters replicated between stores', () => {
  it('converge to the sum of every increment whatever the order of exchanges', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('incr' as const), at: fc.integer({ min: 0, max: 2 }), delta: fc.bigInt({ min: -5n, max: 20n }) }),
            fc.record({ op: fc.constant('sync' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }) }),
          ),
          { maxLength: 30 },
        ),
        async (ops) => {
          const clock = new VirtualClock();
          const stores = ['n0', 'n1', 'n2'].map((id) => new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: id }));
          const key = utf8('hits');
          let total = 0n;
          for (const op of ops) {
            await clock.advance(1);
            if (op.op === 'incr') {
              await (stores[op.at] as ReplicaStore).coordinateIncr(key, op.delta);
              total += op.delta;
            } else {
              const obj = await (stores[op.from] as ReplicaStore).readRaw(key);
              if (obj !== undefined) await (stores[op.to] as ReplicaStore).apply(key, obj);
            }
          }
          // Settle: every store sends its object to every other store, twice round.
          for (let round = 0; round < 2; round++) {
            for (const from of stores) {
              const obj = await from.readRaw(key);
              if (obj === undefined) continue;
              for (const to of stores) await to.apply(key, obj);
            }
          }
          for (const s of stores) {
            const obj = await s.read(key);
            assert.equal(obj === undefined ? 0n : mergedCounterValue(obj.versions), total);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
