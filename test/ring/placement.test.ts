import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ring, maxFallbackNodes, type NodeDescriptor, type PreferenceList, type Replication } from '../../src/ring/index.ts';
import { keys, maxOverMean, node, nodes, replicaLoad } from './helpers.ts';

/**
 * The rules written the slow, obvious way: walk every partition clockwise,
 * collect distinct owners, then pick per group by (new DC, new rack, walk
 * order). The ring's move-to-front sweep must give exactly this.
 */
function modelList(ring: Ring, p: number, replication: Replication): PreferenceList {
  const q = ring.partitionCount();
  const walk: string[] = [];
  for (let i = 0; i < q && walk.length < ring.nodes().length; i++) {
    const owner = ring.ownerOf((p + i) % q);
    if (owner !== undefined && !walk.includes(owner)) walk.push(owner);
  }
  for (const id of ring.nodes()) if (!walk.includes(id)) walk.push(id);
  const info = new Map(ring.members().map((n) => [n.id, n]));
  const groups: Array<{ members: string[]; need: number }> =
    'n' in replication
      ? [{ members: [...ring.nodes()], need: replication.n }]
      : Object.keys(replication.perDc)
          .sort()
          .map((dc) => ({ members: ring.nodes().filter((id) => info.get(id)?.dc === dc), need: replication.perDc[dc] as number }));
  const chosen: string[] = [];
  for (const group of groups) {
    const dcs = new Set<string>();
    const racks = new Set<string>();
    const allDcs = new Set(group.members.map((id) => info.get(id)?.dc));
    const allRacks = new Set(group.members.map((id) => `${info.get(id)?.dc}/${info.get(id)?.rack}`));
    for (let r = 0; r < Math.min(group.need, group.members.length); r++) {
      const candidates = walk.filter((id) => group.members.includes(id) && !chosen.includes(id));
      const score = (id: string): number => (!dcs.has(info.get(id)?.dc as string) ? 2 : !racks.has(`${info.get(id)?.dc}/${info.get(id)?.rack}`) ? 1 : 0);
      const level = dcs.size < allDcs.size ? 2 : racks.size < allRacks.size ? 1 : 0;
      const pick = candidates.find((id) => score(id) >= level) as string;
      chosen.push(pick);
      dcs.add(info.get(pick)?.dc as string);
      racks.add(`${info.get(pick)?.dc}/${info.get(pick)?.rack}`);
    }
  }
  const home = walk.filter((id) => chosen.includes(id));
  const fallbacks = walk.filter((id) => !chosen.includes(id)).slice(0, maxFallbackNodes);
  return { home, fallbacks };
}

interface Topology {
  count: number;
  dcs: number;
  racks: number;
  strategy: 'balanced' | 'random';
  perDc: boolean;
  n: number;
  joins: number;
}

const topology: fc.Arbitrary<Topology> = fc.record({
  count: fc.integer({ min: 1, max: 14 }),
  dcs: fc.integer({ min: 1, max: 3 }),
  racks: fc.integer({ min: 1, max: 4 }),
  strategy: fc.constantFrom('balanced' as const, 'random' as const),
  perDc: fc.boolean(),
  n: fc.integer({ min: 1, max: 5 }),
  joins: fc.integer({ min: 0, max: 2 }),
});

function build(t: Topology): { ring: Ring; replication: Replication } {
  // dc9 has no nodes: its count must simply be ignored until nodes arrive there.
  const replication: Replication = t.perDc ? { perDc: { dc1: t.n, dc2: Math.max(1, t.n - 1), dc9: 2 } } : { n: t.n };
  const base = t.strategy === 'balanced' ? { partitionCount: 256 } : { tokensPerNode: 8 };
  let ring = Ring.create({ strategy: t.strategy, nodes: nodes(t.count, 'n', t.racks, t.dcs), replication, ...base });
  for (let j = 0; j < t.joins; j++) ring = ring.join(node(`late${j}`, `dc${(j % t.dcs) + 1}`, `r${j + 1}`));
  return { ring, replication };
}

test('preference lists equal the slow clockwise-walk model (random topologies, both strategies)', () => {
  fc.assert(
    fc.property(topology, (t) => {
      const { ring, replication } = build(t);
      for (let p = 0; p < ring.partitionCount(); p += 7) {
        assert.deepEqual(ring.preferenceList(p), modelList(ring, p, replication), `partition ${p}`);
      }
    }),
    { numRuns: 80 },
  );
});

test('home replicas are distinct and spread over as many DCs, then racks, as the topology allows', () => {
  fc.assert(
    fc.property(topology, (t) => {
      const { ring, replication } = build(t);
      const info = new Map<string, NodeDescriptor>(ring.members().map((n) => [n.id, n]));
      for (let p = 0; p < ring.partitionCount(); p += 3) {
        const { home, fallbacks } = ring.preferenceList(p);
        assert.equal(new Set(home).size, home.length, 'home repeats a node');
        assert.equal(new Set(fallbacks).size, fallbacks.length, 'fallbacks repeat a node');
        for (const f of fallbacks) assert.ok(!home.includes(f), `fallback ${f} is a home replica`);
        assert.equal(fallbacks.length, Math.min(maxFallbackNodes, ring.nodes().length - home.length));
        if ('n' in replication) {
          assert.equal(home.length, Math.min(replication.n, ring.nodes().length));
          const allDcs = new Set(ring.members().map((n) => n.dc)).size;
          assert.equal(new Set(home.map((id) => info.get(id)?.dc)).size, Math.min(home.length, allDcs));
        } else {
          for (const [dc, count] of Object.entries(replication.perDc)) {
            const inDc = ring.members().filter((n) => n.dc === dc);
            const picked = home.filter((id) => info.get(id)?.dc === dc);
            assert.equal(picked.length, Math.min(count, inDc.length), `${dc} replicas`);
            const racks = new Set(inDc.map((n) => n.rack)).size;
            assert.equal(new Set(picked.map((id) => info.get(id)?.rack)).size, Math.min(picked.length, racks), `${dc} racks`);
          }
          for (const id of home) assert.ok((info.get(id)?.dc as string) in replication.perDc);
        }
      }
    }),
    { numRuns: 80 },
  );
});

test('the first home replica is the partition owner when its DC holds replicas', () => {
  const ring = Ring.create({ nodes: nodes(9, 'n', 3, 3), replication: { perDc: { dc1: 2, dc2: 1, dc3: 1 } } });
  for (let p = 0; p < ring.partitionCount(); p += 101) assert.equal(ring.preferenceList(p).home[0], ring.ownerOf(p));
});

test('NetworkTopologyStrategy-style counts: {dc1: 3, dc2: 2} over racks', () => {
  const members = [
    ...['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((id, i) => node(id, 'dc1', `rack${(i % 3) + 1}`)),
    ...['b1', 'b2', 'b3', 'b4'].map((id, i) => node(id, 'dc2', `rack${(i % 2) + 1}`)),
  ];
  const ring = Ring.create({ nodes: members, replication: { perDc: { dc1: 3, dc2: 2 } } });
  assert.equal(ring.replicationFactor(), 5);
  const rackOf = new Map(members.map((n) => [n.id, `${n.dc}/${n.rack}`]));
  for (let p = 0; p < ring.partitionCount(); p++) {
    const { home } = ring.preferenceList(p);
    assert.equal(home.filter((id) => id.startsWith('a')).length, 3);
    assert.equal(home.filter((id) => id.startsWith('b')).length, 2);
    assert.equal(new Set(home.map((id) => rackOf.get(id))).size, 5, `partition ${p}: ${home.join(',')}`);
  }
  // Equal racks and the striped fresh layout: every node carries the same replica load.
  const dc1 = [...replicaLoad(ring)].filter(([id]) => id.startsWith('a')).map(([, v]) => v);
  assert.ok(maxOverMean(dc1) <= 1.01, `dc1 replica balance ${maxOverMean(dc1)}`);
});

test('sloppyReplicas replaces down home nodes with the next up fallbacks, same DC first', () => {
  const members = [...nodes(4, 'a', 2).map((n) => ({ ...n, dc: 'dc1' })), ...nodes(4, 'b', 2).map((n) => ({ ...n, dc: 'dc2' }))];
  const ring = Ring.create({ nodes: members, replication: { perDc: { dc1: 2, dc2: 2 } } });
  const dcOf = (id: string): string | undefined => ring.dcOf(id);
  for (let p = 0; p < ring.partitionCount(); p += 97) {
    const { home, fallbacks } = ring.preferenceList(p);
    assert.deepEqual(ring.sloppyReplicas(p, () => true), home.map((n) => ({ node: n, standInFor: null })));
    const down = new Set([home[0] as string, home[3] as string]);
    const sloppy = ring.sloppyReplicas(p, (n) => !down.has(n));
    assert.equal(sloppy.length, 4);
    assert.equal(new Set(sloppy.map((r) => r.node)).size, 4);
    for (const r of sloppy) {
      assert.ok(!down.has(r.node));
      if (r.standInFor !== null) {
        assert.ok(fallbacks.includes(r.node));
        assert.equal(dcOf(r.node), dcOf(r.standInFor));
        // The first up fallback of that DC, in walk order.
        assert.equal(r.node, fallbacks.find((f) => dcOf(f) === dcOf(r.standInFor as string) && !down.has(f)));
      }
    }
    // With everyone but one home node down there is nothing to stand in.
    const survivors = ring.sloppyReplicas(p, (n) => n === home[1]);
    assert.deepEqual(survivors, [{ node: home[1], standInFor: null }]);
  }
});

test('random strategy: slot s belongs to the first token at or after s × 2^18, wrapping', () => {
  const ring = Ring.create({ strategy: 'random', nodes: nodes(5), tokensPerNode: 16 });
  const tokens = ring.tokenPositions() as Uint32Array;
  assert.equal(tokens.length, 80);
  assert.equal(ring.partitionCount(), 80);
  for (const key of keys(2000)) {
    const slot = ring.positionOf(key);
    let expected = 0;
    for (let i = 0; i < tokens.length; i++) {
      if ((tokens[i] as number) >= slot * 2 ** 18) {
        expected = i;
        break;
      }
    }
    assert.equal(ring.partitionOf(key), expected);
    assert.equal(ring.partitionOfSlot(slot), expected);
  }
  assert.throws(() => Ring.create({ strategy: 'random', nodes: nodes(2), partitionCount: 64 }), /tokensPerNode/);
});

test('random strategy: partitionRange lists exactly the slots each arc holds', () => {
  for (const [s, t] of [[1, 1], [3, 4], [7, 64], [50, 256]] as const) {
    const ring = Ring.create({ strategy: 'random', nodes: nodes(s), tokensPerNode: t });
    const holder = Int32Array.from({ length: 16384 }, (_, slot) => ring.partitionAt(slot));
    const covered = new Int32Array(16384).fill(-1);
    for (let p = 0; p < ring.partitionCount(); p++) {
      const range = ring.partitionRange(p);
      if (range === null) {
        assert.ok(!holder.includes(p), `partition ${p} holds a slot but has no range`);
        continue;
      }
      const size = range.last >= range.first ? range.last - range.first + 1 : 16384 - range.first + range.last + 1;
      for (let k = 0; k < size; k++) {
        const slot: number = (range.first + k) % 16384;
        assert.equal(covered[slot], -1, `slot ${slot} in two ranges`);
        covered[slot] = p;
      }
    }
    assert.deepEqual(covered, holder, `S=${s} T=${t}`);
  }
});

test('slotRanges() covers slots 0 to 16383 once, each with its partition’s home replicas', () => {
  for (const ring of [
    Ring.create({ nodes: nodes(4) }),
    Ring.create({ nodes: nodes(4), partitionCount: 128 }),
    Ring.create({ nodes: nodes(4), strategy: 'random', tokensPerNode: 8 }),
  ]) {
    const ranges = ring.slotRanges();
    let next = 0;
    for (const r of ranges) {
      assert.equal(r.first, next);
      for (let slot = r.first; slot <= r.last; slot++) assert.deepEqual(r.replicas, ring.preferenceList(ring.partitionAt(slot)).home);
      next = r.last + 1;
    }
    assert.equal(next, 16384);
    for (let i = 1; i < ranges.length; i++) assert.notDeepEqual(ranges[i]?.replicas, ranges[i - 1]?.replicas);
  }
  // A random ring's slot runs are as long as its arcs; a 128-partition ring has runs of 128 slots or more.
  assert.ok(Ring.create({ nodes: nodes(4), partitionCount: 128 }).slotRanges().every((r) => r.last - r.first + 1 >= 128));
});

test('ranges() covers every partition once with its home replicas', () => {
  const ring = Ring.create({ nodes: nodes(5), partitionCount: 64 });
  const ranges = ring.ranges();
  let next = 0;
  for (const r of ranges) {
    assert.equal(r.start, next);
    for (let p = r.start; p <= r.end; p++) assert.deepEqual(r.replicas, ring.preferenceList(p).home);
    next = r.end + 1;
  }
  assert.equal(next, 64);
});

test('a Ring serves as the coordinator’s Placement view', async () => {
  const { replicasForN } = await import('../../src/replication/index.ts');
  type Placement = import('../../src/replication/index.ts').Placement;
  const ring = Ring.create({ nodes: nodes(6, 'n', 2), replication: { n: 3 } });
  const placement: Placement = ring;
  const key = Buffer.from('user42');
  const list = placement.preferenceList(placement.partitionOfSlot(ring.positionOf(key)));
  assert.deepEqual(list, ring.replicasOf(key));
  assert.deepEqual(replicasForN(list, 5).home, [...list.home, ...list.fallbacks].slice(0, 5));
  assert.equal(placement.dcOf('n000'), 'dc1');
  assert.equal(placement.dcOf('nobody'), undefined);
});
