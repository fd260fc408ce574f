/**
 * `ringkv start` raises V8's old-generation growth factor (src/cli/heap-growth.ts)
 * unless the operator chose one. What it does to a node's full collections
 * is measured by bench:cluster (bench/RESULTS.md), not asserted here: V8
 * picks its own factor from the collector's speed, so a small workload in a
 * test may already get the maximum.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { heapGrowingPercent, tuneHeapGrowth } from '../../src/cli/heap-growth.ts';

describe('heap growth tuning', () => {
  it('sets the factor for the process when nothing chose one', () => {
    const set: string[] = [];
    assert.equal(tuneHeapGrowth(['--enable-source-maps'], '--max-old-space-size=512', (flags) => set.push(flags)), true);
    assert.deepEqual(set, [`--heap-growing-percent=${heapGrowingPercent}`]);
  });

  it('leaves a factor the operator chose in node flags or NODE_OPTIONS alone, in either spelling', () => {
    const set: string[] = [];
    const record = (flags: string): void => void set.push(flags);
    assert.equal(tuneHeapGrowth(['--heap-growing-percent=50'], '', record), false);
    assert.equal(tuneHeapGrowth([], '--max-old-space-size=512 --heap_growing_percent=20', record), false);
    assert.deepEqual(set, []);
  });
});
