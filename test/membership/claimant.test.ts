/** The ring claimant on a simulated cluster: membership changes become ring changes, liveness does not. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring, type RingState } from '../../src/ring/index.ts';
import { SimCluster } from '../../sim/cluster.ts';
import { MembershipNode } from '../../sim/membership-node.ts';

const partitionCount = 64;

function cluster(nodes: number, seed = 5): SimCluster<MembershipNode> {
  return new SimCluster<MembershipNode>({
    seed,
    nodes,
    faults: { dropRate: 0.02, meanJitterMs: 3 },
    factory: (ctx) => new MembershipNode(ctx, { claimant: { partitionCount, replication: { n: 3 } } }),
  });
}

function ringKey(node: MembershipNode): string {
  const r = node.membership.ringState();
  return `${r.version}/${r.proposer}/${r.hash}`;
}

/** True when every live node holds the same ring and its nodes are `ids`. */
function ringIs(c: SimCluster<MembershipNode>, ids: string[]): boolean {
  const keys = new Set(c.liveNodes().map(([, n]) => ringKey(n)));
  if (keys.size !== 1) return false;
  const first = c.liveNodes()[0]?.[1];
  const state = first?.membership.ringState().data as RingState | null;
  return state !== null && state !== undefined && state.nodes.map((n) => n.id).join() === [...ids].sort().join();
}

function ringOf(node: MembershipNode): Ring {
  return Ring.fromState(node.membership.ringState().data as RingState);
}

test('claimant: the lowest normal node builds the ring; a join moves partitions only to the newcomer', async () => {
  const c = cluster(5);
  for (const id of ['n1', 'n2', 'n3', 'n4']) await c.start(id);
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3', 'n4']), 30_000), 'a ring over the four nodes');
  for (const [id, node] of c.liveNodes()) {
    assert.equal(node.claimant?.claimant(), 'n1', `${id} agrees n1 is the claimant`);
    if (id !== 'n1') assert.equal(node.claimant?.proposals, 0, `${id} never proposed`);
  }
  const before = ringOf(c.node('n1') as MembershipNode);
  assert.equal(before.partitionCount(), partitionCount);

  await c.start('n5');
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3', 'n4', 'n5']), 30_000), 'n5 joins the ring');
  const after = ringOf(c.node('n3') as MembershipNode);
  assert.equal(after.epoch, before.epoch + 1);
  let moved = 0;
  for (let p = 0; p < partitionCount; p++) {
    if (after.ownerOf(p) !== before.ownerOf(p)) {
      moved++;
      assert.equal(after.ownerOf(p), 'n5', `partition ${p} moved to ${after.ownerOf(p)}, not to the newcomer`);
    }
  }
  assert.ok(moved >= partitionCount / 5 - 2 && moved <= partitionCount / 5 + 2, `${moved} partitions moved to n5`);
  c.shutdown();
});

test('claimant: a down node keeps its partitions; leaving takes it out of the ring', async () => {
  const c = cluster(4, 6);
  await c.startAll();
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3', 'n4']), 30_000));
  const key = ringKey(c.node('n1') as MembershipNode);
  c.crash('n3');
  assert.ok(await c.runUntil(() => c.liveNodes().every(([, n]) => n.membership.member('n3')?.liveness === 'down'), 60_000), 'n3 seen down');
  await c.run(10_000);
  for (const [, n] of c.liveNodes()) assert.equal(ringKey(n), key, 'down is temporary: the ring did not change');

  (c.node('n4') as MembershipNode).membership.setStatus('leaving');
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3']), 30_000), 'the leaving node is out of the ring, the down one is still in');
  c.shutdown();
});

test('claimant: when the claimant is down the next lowest node takes over, and a restart does not clobber the ring', async () => {
  const c = cluster(5, 7);
  for (const id of ['n1', 'n2', 'n3', 'n4']) await c.start(id);
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3', 'n4']), 30_000));
  c.crash('n1');
  assert.ok(await c.runUntil(() => c.liveNodes().every(([, n]) => n.membership.member('n1')?.liveness === 'down'), 60_000));
  await c.start('n5');
  assert.ok(await c.runUntil(() => ringIs(c, ['n1', 'n2', 'n3', 'n4', 'n5']), 30_000), 'n2 adds n5 while n1 is down');
  assert.equal((c.node('n2') as MembershipNode).membership.ringState().proposer, 'n2');
  const key = ringKey(c.node('n2') as MembershipNode);

  await c.restart('n1');
  await c.run(20_000);
  for (const [id, n] of c.liveNodes()) assert.equal(ringKey(n), key, `${id} still holds the ring n2 proposed`);
  assert.equal((c.node('n1') as MembershipNode).claimant?.proposals, 0, 'the restarted claimant learnt the ring instead of proposing one');
  c.shutdown();
});
