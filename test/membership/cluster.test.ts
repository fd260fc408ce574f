/** Membership end to end on the simulated network: small clusters and awkward start orders. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../../sim/cluster.ts';
import { MembershipNode } from '../../sim/membership-node.ts';

function cluster(nodes: number, seed: number, seedCount?: number): SimCluster<MembershipNode> {
  return new SimCluster<MembershipNode>({
    seed,
    nodes,
    faults: { dropRate: 0.05, meanJitterMs: 5 },
    ...(seedCount !== undefined ? { seedCount } : {}),
    factory: (ctx) => new MembershipNode(ctx, { claimant: false }),
  });
}

const liveness = (c: SimCluster<MembershipNode>, observer: string, target: string): string | undefined =>
  c.node(observer)?.membership.member(target)?.liveness;

test('membership on two nodes: a crash is marked down without a confirmer, a restart is up again', async () => {
  const c = cluster(2, 21);
  await c.startAll();
  assert.ok(await c.runUntil(() => liveness(c, 'n1', 'n2') === 'up' && liveness(c, 'n2', 'n1') === 'up', 10_000));
  c.crash('n2');
  const took = await c.runUntil(() => liveness(c, 'n1', 'n2') === 'down', 60_000);
  assert.ok(took !== undefined && took > 15_000 && took < 30_000, `n2 marked down after ${took} ms`);
  await c.restart('n2');
  assert.ok(await c.runUntil(() => liveness(c, 'n1', 'n2') === 'up' && c.node('n1')?.membership.member('n2')?.generation === 2, 10_000));
  c.shutdown();
});

test('membership: a node started before its seed keeps retrying and joins once the seed is up', async () => {
  const c = cluster(4, 22, 1);
  for (const id of ['n2', 'n3', 'n4']) await c.start(id);
  await c.run(10_000);
  assert.equal(c.node('n2')?.membership.members().length, 1, 'no seed, nobody known');
  await c.start('n1');
  const everyoneKnowsEveryone = (): boolean => c.liveNodes().every(([, n]) => n.membership.members().filter((m) => m.liveness === 'up').length === 4);
  assert.ok(await c.runUntil(everyoneKnowsEveryone, 20_000));
  c.shutdown();
});

test('membership: a cut-off node marks everyone down on its own, and everyone comes back after healing', async () => {
  const c = cluster(4, 23);
  await c.startAll();
  const all = (): boolean => c.liveNodes().every(([, n]) => n.membership.members().every((m) => m.liveness === 'up') && n.membership.members().length === 4);
  assert.ok(await c.runUntil(all, 20_000));
  c.partition(['n4'], ['n1', 'n2', 'n3']);
  assert.ok(await c.runUntil(() => ['n1', 'n2', 'n3'].every((id) => liveness(c, 'n4', id) === 'down' && liveness(c, id, 'n4') === 'down'), 60_000));
  c.heal();
  assert.ok(await c.runUntil(all, 30_000), 'views heal through gossip to unreachable nodes');
  c.shutdown();
});
