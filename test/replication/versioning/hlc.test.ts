import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/core/index.ts';
import { HybridClock, hlcTicks, hlcTicksPerMs, maxHlcAheadMs } from '../../../src/replication/index.ts';

describe('HybridClock', () => {
  it('follows wall time and never repeats or goes back within a millisecond', () => {
    const clock = new VirtualClock();
    const hlc = new HybridClock(clock);
    const wall = Math.floor(clock.wallMs());
    const stamps = Array.from({ length: 5000 }, () => hlc.now());
    assert.equal(stamps[0], wall);
    for (let i = 1; i < stamps.length; i++) assert.ok((stamps[i] as number) > (stamps[i - 1] as number));
    assert.equal(new Set(stamps.map(hlcTicks)).size, stamps.length, 'distinct ticks');
    assert.ok((stamps[stamps.length - 1] as number) - wall < 5, 'logical ticks stay a fraction of a millisecond each');
  });

  it('is exact in float64 well past today', () => {
    const clock = new VirtualClock({ wallOffsetMs: 2 ** 42 });
    const hlc = new HybridClock(clock);
    const a = hlc.now();
    const b = hlc.now();
    assert.equal(b - a, 1 / hlcTicksPerMs);
  });

  it('a stamp after observing a later remote one is later still, but a wildly fast peer is capped', async () => {
    const clock = new VirtualClock();
    const hlc = new HybridClock(clock);
    const wall = Math.floor(clock.wallMs());
    hlc.observe(wall + 500);
    assert.ok(hlc.now() > wall + 500);
    hlc.observe(wall + 10 * 60 * 60 * 1000);
    assert.ok(hlc.now() <= wall + maxHlcAheadMs + 1);
    await clock.advance(2 * maxHlcAheadMs);
    assert.equal(hlc.now(), Math.floor(clock.wallMs()), 'wall time takes over again');
  });
});
