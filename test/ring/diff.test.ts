import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ring, diffOwnership, rangeSize, type NodeDescriptor, type OwnershipChange } from '../../src/ring/index.ts';
import { node, nodes } from './helpers.ts';

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

/** Applies a diff slot by slot: every slot's `after` list is the covering change's `to`, or unchanged. */
function checkApplies(before: Ring, after: Ring, diff: readonly OwnershipChange[]): void {
  const change = new Array<OwnershipChange | undefined>(16384).fill(undefined);
  for (const c of diff) {
    checkTransfers(c);
    assert.equal(c.partition, after.partitionAt(c.range.first));
    assert.equal(c.beforePartition, before.partitionAt(c.range.first));
    for (let k = 0; k < rangeSize(c.range); k++) {
      const slot = (c.range.first + k) % 16384;
      assert.equal(change[slot], undefined, `slot ${slot} in two changes`);
      change[slot] = c;
    }
  }
  for (let slot = 0; slot < 16384; slot++) {
    const c = change[slot];
    const was = before.preferenceList(before.partitionAt(slot)).home;
    if (c !== undefined) assert.deepEqual(c.from, was);
    assert.deepEqual(after.preferenceList(after.partitionAt(slot)).home, c === undefined ? was : c.to, `slot ${slot}`);
  }
}

test('random: applying the diff to before gives after for every slot', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), step, (s, change) => {
      const before = Ring.create({ strategy: 'random', nodes: nodes(s, 'n', 2), tokensPerNode: 8, replication: { n: 2 } });
      const after = apply(before, change);
      checkApplies(before, after, diffOwnership(before, after));
    }),
    { numRuns: 40 },
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

test('rings of different strategies or partition counts diff slot by slot', () => {
  const balanced = Ring.create({ nodes: nodes(4) });
  const coarse = Ring.create({ nodes: nodes(5), partitionCount: 1024 });
  const random = Ring.create({ nodes: nodes(4), strategy: 'random', tokensPerNode: 16 });
  for (const [x, y] of [[balanced, random], [random, balanced], [balanced, coarse], [coarse, balanced]] as const) checkApplies(x, y, diffOwnership(x, y));
  assert.deepEqual(diffOwnership(balanced, balanced), []);
});
