import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runReplication } from '../../../sim/replication/run.ts';

// The CI sweep of the replication simulation: 200 seeds over 3–6 nodes.
// Thousands of seeds: npm run sim -- --scenario replication --seeds 5000 --json
const seeds = Number(process.env.RINGKV_SIM_SEEDS ?? 200);
/** A shorter fault window than the CLI's 2.5 s keeps the sweep well inside a minute. */
const faultWindowMs = 1500;

test(`replication simulation holds invariants 1–5 over ${seeds} seeds`, async () => {
  let faults = 0;
  let ops = 0;
  let hintsReplayed = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const nodes = 3 + (seed % 4);
    const result = await runReplication({ seed, nodes, faultWindowMs });
    assert.ok(result.ok, `seed ${seed} (${nodes} nodes) failed; replay: npm run sim -- --scenario replication --seed ${seed} --nodes ${nodes} --window=${faultWindowMs}\n${result.failure}`);
    faults += result.faultsInjected;
    ops += result.opsChecked;
    hintsReplayed += result.metrics.hintsReplayed ?? 0;
  }
  // The sweep must actually exercise faults, operations and handoff.
  assert.ok(faults > seeds * 10, `only ${faults} faults injected`);
  assert.ok(ops > seeds * 40, `only ${ops} operations checked`);
  assert.ok(hintsReplayed > seeds, `only ${hintsReplayed} hints replayed`);
});

test('replication simulation over the LSM engine on the crash-modelling file system (20 seeds)', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const result = await runReplication({ seed, nodes: 4, engine: 'lsm', faultWindowMs });
    assert.ok(result.ok, `seed ${seed} failed; replay: npm run sim -- --scenario replication --seed ${seed} --engine=lsm --window=${faultWindowMs}\n${result.failure}`);
  }
});

test('the same seed replays the same run', async () => {
  const a = await runReplication({ seed: 42, nodes: 4, faultWindowMs });
  const b = await runReplication({ seed: 42, nodes: 4, faultWindowMs });
  assert.deepEqual(a, b);
  assert.match(a.traceHash, /^[0-9a-f]{64}$/);
  const c = await runReplication({ seed: 43, nodes: 4, faultWindowMs });
  assert.notEqual(c.traceHash, a.traceHash);
});
