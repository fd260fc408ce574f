import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhiAccrualDetector } from '../../src/membership/index.ts';

const options = { minMeanMs: 1000, maxMeanMs: 4000, maxSampleMs: 8000, windowSize: 5 };

test('phi: zero right after a heartbeat and growing linearly with silence', () => {
  const d = new PhiAccrualDetector(options);
  d.heartbeat(0);
  assert.equal(d.phi(0), 0);
  // Mean floor 1000 ms: phi = t/1000 · log10(e).
  assert.ok(Math.abs(d.phi(1000) - Math.LOG10E) < 1e-12);
  assert.ok(Math.abs(d.phi(10_000) - 10 * Math.LOG10E) < 1e-12);
  assert.ok(Math.abs(d.silenceForPhiMs(8) - 8000 / Math.LOG10E) < 1e-9);
});

test('phi: the mean follows the samples within its floor and ceiling', () => {
  const d = new PhiAccrualDetector(options);
  let t = 0;
  for (let i = 0; i < 6; i++) d.heartbeat((t += 2000));
  assert.equal(d.meanMs(), 2000);
  // Faster arrivals do not push the mean under the floor (bursts must not make phi hair-trigger).
  for (let i = 0; i < 6; i++) d.heartbeat((t += 100));
  assert.equal(d.meanMs(), 1000);
  // The window forgets old samples: five 3000 ms intervals replace all earlier ones.
  for (let i = 0; i < 5; i++) d.heartbeat((t += 3000));
  assert.equal(d.meanMs(), 3000);
});

test('phi: gaps longer than maxSampleMs (a partition, a pause) are not samples', () => {
  const d = new PhiAccrualDetector(options);
  d.heartbeat(0);
  d.heartbeat(1000);
  d.heartbeat(61_000);
  assert.equal(d.meanMs(), 1000);
  assert.equal(d.phi(61_000), 0);
});

test('phi: the ceiling bounds the time to suspect a peer with slow heartbeats', () => {
  const d = new PhiAccrualDetector({ ...options, maxSampleMs: 100_000 });
  let t = 0;
  for (let i = 0; i < 6; i++) d.heartbeat((t += 20_000));
  assert.equal(d.meanMs(), 4000);
  assert.ok(d.phi(t + 8000 / Math.LOG10E * 4 + 1) > 8);
});

test('phi: invalid options are programmer errors', () => {
  assert.throws(() => new PhiAccrualDetector({ ...options, minMeanMs: 0 }), /minMeanMs/);
  assert.throws(() => new PhiAccrualDetector({ ...options, windowSize: 0 }), /window/);
});
