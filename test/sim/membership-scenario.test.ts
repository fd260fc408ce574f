/**
 * The membership scenario over a CI-sized sweep of seeds. Longer sweeps:
 * `npm run sim -- --scenario membership --seeds 500 --nodes 20` (bench/RESULTS.md).
 * RINGKV_SIM_SEEDS widens this sweep without editing the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateMetrics } from '../../sim/scenario.ts';
import { detectionBoundMs, scenario } from '../../sim/scenarios/membership.ts';

const seeds = Number(process.env.RINGKV_SIM_SEEDS ?? 20);

test(`membership scenario: ${seeds} seeds × 8 nodes converge, detect the crash within the bound, no false positives`, async () => {
  const metrics: Record<string, number> = {};
  let faults = 0;
  const failures: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const result = await scenario.run(seed, { nodes: 8, extra: {} });
    faults += result.faultsInjected;
    if (!result.ok) failures.push(`seed ${seed}: ${result.failure}`);
    aggregateMetrics(metrics, result.metrics ?? {});
  }
  assert.deepEqual(failures, []);
  assert.ok(faults > seeds * 500, `only ${faults} faults injected`);
  assert.equal(metrics.falseDowns, 0);
  assert.ok((metrics.detectionMsMax ?? Infinity) <= detectionBoundMs);
  assert.equal(metrics.detections, seeds * 7, 'every live node saw every crash');
});

test('membership scenario: a too-small cluster is a failure that says why', async () => {
  const result = await scenario.run(1, { nodes: 2, extra: {} });
  assert.equal(result.ok, false);
  assert.match(result.failure ?? '', /at least 3 nodes, got 2/);
});
