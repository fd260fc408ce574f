/** Same seed ⇒ same run, event for event: the property every failing seed's replay depends on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from '../../sim/scenarios/membership.ts';
import { SimCluster } from '../../sim/cluster.ts';
import { MembershipNode } from '../../sim/membership-node.ts';

test('determinism: a membership scenario run replays to the same trace hash, and another seed differs', async () => {
  const options = { nodes: 6, extra: {} };
  const first = await scenario.run(11, options);
  const again = await scenario.run(11, options);
  const other = await scenario.run(12, options);
  assert.ok(first.ok, first.failure);
  assert.ok(first.traceHash && /^[0-9a-f]{64}$/.test(first.traceHash));
  assert.equal(again.traceHash, first.traceHash);
  assert.equal(again.faultsInjected, first.faultsInjected);
  assert.deepEqual(again.metrics, first.metrics);
  assert.notEqual(other.traceHash, first.traceHash);
});

test('determinism: crashes, restarts and partitions replay identically', async () => {
  const runOnce = async (): Promise<{ hash: string; events: number }> => {
    const cluster = new SimCluster<MembershipNode>({
      seed: 99,
      nodes: 5,
      faults: { dropRate: 0.1, duplicateRate: 0.05, meanJitterMs: 10 },
      factory: (ctx) => new MembershipNode(ctx),
    });
    await cluster.startAll();
    await cluster.run(10_000);
    cluster.crash('n2', { tornWrites: true });
    cluster.partition(['n1'], ['n3'], { oneWay: true });
    await cluster.run(5_000);
    cluster.heal();
    await cluster.restart('n2');
    await cluster.run(10_000);
    cluster.shutdown();
    return { hash: cluster.traceHash(), events: cluster.trace.events };
  };
  const a = await runOnce();
  const b = await runOnce();
  assert.ok(a.events > 500, `only ${a.events} events traced`);
  assert.deepEqual(a, b);
});
