import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ring, diffOwnership, rangeSize, type NodeDescriptor, type OwnershipChange } from '../../src/ring/index.ts';
import { keys, node, nodes } from './helpers.ts';

function checkTransfers(change: OwnershipChange): void {
  const gained = change.to.filter((n) => !change.from.includes(n));
  assert.deepEqual(change.transfers.map((t) => t.to), gained);
  for (const t of change.transfers) {
    if (change.from.length === 0) assert.equal(t.from, null);
    else assert.ok(change.from.includes(t.from as string), `source ${t.from} held no replica`);
  }
  for (const r of change.released) assert.ok(change.from.includes(r) && !change.to.includes(r));
  const lost = change.from.filter((n) => !change.to.includes(n));
  const handedOver = change.transfers.flatMap((t) => (t.from !== null && lost.includes(t.from) ? [t.from] : []));
  assert.deepEqual([...handedOver, ...change.released].sort(), [...lost].sort());
}

type Step = { kind: 'join'; id: string; rack: string } | { kind: 'leave'; pick: number } | { kind: 'replace'; pick: number; id: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('join' as const), id: fc.stringMatching(/^j[a-z0-9]{1,5}$/), rack: fc.constantFrom('r1', 'r2', 'r3') }),
  fc.record({ kind: fc.constant('leave' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), id: fc.stringMatching(/^x[a-z0-9]{1,5}$/) }),
);

function apply(ring: Ring, s: Step): Ring {
  const ids = ring.nodes();
  if (s.kind === 'join') return ring.hasNode(s.id) ? ring : ring.join(node(s.id, 'dc1', s.rack));
  if (ids.length <= 1) return ring;
  const victim = ids[s.pick % ids.length] as string;
  if (s.kind === 'leave') return ring.leave(victim);
  return ring.hasNode(s.id) ? ring : ring.replace(victim, node(s.id, 'dc1', 'r1'));
}

test('balanced: applying the diff to before gives after, partition by partition', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), step, (s, racks, n, change) => {
      const before = Ring.create({ nodes: nodes(s, 'n', racks), partitionCount: 512, replication: { n } });
      const after = apply(before, change);
      const diff = diffOwnership(before, after);
      const table = Array.from({ length: 512 }, (_, p) => before.preferenceList(p).home);
      const seen = new Set<number>();
      for (const c of diff) {
        assert.ok(!seen.has(c.partition), 'a partition listed twice');
        seen.add(c.partition);
        assert.equal(c.beforePartition, c.partition);
        assert.deepEqual(c.from, table[c.partition]);
        assert.deepEqual(c.range, after.partitionRange(c.partition));
        checkTransfers(c);
        table[c.partition] = c.to;
      }
      for (let p = 0; p < 512; p++) assert.deepEqual(table[p], after.preferenceList(p).home);
    }),
    { numRuns: 80 },
  );
});

test('random: applying the diff to before gives after for every key position', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), step, (s, change) => {
      const before = Ring.create({ strategy: 'random', nodes: nodes(s, 'n', 2), tokensPerNode: 8, replication: { n: 2 } });
      const after = apply(before, change);
      const diff = diffOwnership(before, after);
      let covered = 0;
      for (const c of diff) {
        checkTransfers(c);
        covered += rangeSize(c.range, 2 ** 32);
        assert.deepEqual(c.from, before.preferenceList(c.beforePartition).home);
        assert.deepEqual(c.to, after.preferenceList(c.partition).home);
      }
      assert.ok(covered <= 2 ** 32);
      // Any key: its replicas after are the diff's `to` when its position is in a change, else unchanged.
      for (const key of keys(400)) {
        const h = before.positionOf(key);
        const hit = diff.find((c) => (c.range.first <= c.range.last ? h >= c.range.first && h <= c.range.last : h >= c.range.first || h <= c.range.last));
        const expected = hit === undefined ? before.replicasOf(key).home : hit.to;
        assert.deepEqual(after.replicasOf(key).home, expected);
      }
    }),
    { numRuns: 60 },
  );
});

test('a join moves N × the newcomer’s share of replicas, each to the newcomer', () => {
  const before = Ring.create({ nodes: nodes(10) });
  const after = before.join(node('new'));
  const diff = diffOwnership(before, after);
  const transfers = diff.flatMap((c) => c.transfers);
  assert.ok(transfers.every((t) => t.to === 'new'));
  const share = after.partitionsOwnedBy('new').length;
  assert.equal(transfers.length, 3 * share);
  // Every partition the newcomer now holds a replica of is in the diff.
  let held = 0;
  for (let p = 0; p < after.partitionCount(); p++) if (after.preferenceList(p).home.includes('new')) held++;
  assert.equal(held, transfers.length);
});

test('a replacement moves exactly the old node’s replicas to the new node', () => {
  const members: NodeDescriptor[] = nodes(6, 'n', 3);
  const before = Ring.create({ nodes: members });
  const after = before.replace('n004', { ...(members[4] as NodeDescriptor), id: 'n104' });
  for (const c of diffOwnership(before, after)) {
    assert.deepEqual(c.transfers, [{ from: 'n004', to: 'n104' }]);
    assert.deepEqual(c.released, []);
  }
});

test('diffs between rings that do not line up are refused', () => {
  const a = Ring.create({ nodes: nodes(3) });
  assert.throws(() => diffOwnership(a, Ring.create({ nodes: nodes(3), strategy: 'random' })), /Cannot diff a balanced ring against a random ring/);
  assert.throws(() => diffOwnership(a, Ring.create({ nodes: nodes(3), partitionCount: 1024 })), /16384 and 1024 partitions/);
});
