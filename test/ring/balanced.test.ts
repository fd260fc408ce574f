import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ring, redisSlotCount } from '../../src/ring/index.ts';
import { keyLoad, keys, maxOverMean, movedPartitions, node, nodes, partitionLoad, replicaLoad } from './helpers.ts';

const sample = keys(300_000);

test('balanced: keys per node max/mean ≤ 1.05 and one join moves ≤ 1.1 × 1/(S+1) at S = 3, 5, 10, 25, 50', () => {
  for (const s of [3, 5, 10, 25, 50]) {
    const ring = Ring.create({ nodes: nodes(s) });
    assert.equal(ring.partitionCount(), redisSlotCount);
    const balance = maxOverMean(keyLoad(ring, sample).values());
    assert.ok(balance <= 1.05, `S=${s}: max/mean ${balance}`);
    const grown = ring.join(node('node-new'));
    let moved = 0;
    for (const key of sample) if (ring.ownerOf(ring.partitionOf(key)) !== grown.ownerOf(grown.partitionOf(key))) moved++;
    const movedOverIdeal = moved / sample.length / (1 / (s + 1));
    assert.ok(movedOverIdeal <= 1.1, `S=${s}: moved/ideal ${movedOverIdeal}`);
    assert.ok(maxOverMean(keyLoad(grown, sample).values()) <= 1.05, `S=${s}+1 balance`);
  }
});

test('balanced: partitions per node differ by at most one after random joins and leaves', () => {
  const ids = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 2, maxLength: 40 });
  fc.assert(
    fc.property(ids, fc.array(fc.nat(), { maxLength: 6 }), (names, picks) => {
      const [first, ...rest] = names as [string, ...string[]];
      let ring = Ring.create({ nodes: rest.slice(0, Math.max(1, rest.length - 3)).map((id) => node(id)), partitionCount: 1024 });
      const pool = [first, ...rest];
      for (const pick of picks) {
        const id = pool[pick % pool.length] as string;
        const before = ring;
        ring = ring.hasNode(id) ? (ring.nodes().length > 1 ? ring.leave(id) : ring) : ring.join(node(id));
        if (ring === before) continue;
        const loads = [...partitionLoad(ring).values()];
        if (Math.max(...loads) - Math.min(...loads) > 1) return false;
        // Minimal movement: a join moves exactly what the newcomer ends with; a leave exactly what the leaver had.
        const moved = movedPartitions(before, ring).length;
        const expected = ring.hasNode(id) ? ring.partitionsOwnedBy(id).length : before.partitionsOwnedBy(id).length;
        if (moved !== expected) return false;
        if (ring.hasNode(id) && moved > Math.ceil(1024 / ring.nodes().length)) return false;
      }
      return true;
    }),
    { numRuns: 60 },
  );
});

test('balanced: a join moves only partitions to the newcomer and a leave only the leaver’s, with 16384 partitions', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 49 }), fc.integer({ min: 1, max: 4 }), (s, racks) => {
      const ring = Ring.create({ nodes: nodes(s, 'n', racks) });
      const grown = ring.join(node('zz-new', 'dc1', 'r1'));
      for (const p of movedPartitions(ring, grown)) if (grown.ownerOf(p) !== 'zz-new') return false;
      const share = grown.partitionsOwnedBy('zz-new').length;
      if (share !== Math.floor(redisSlotCount / (s + 1))) return false;
      const shrunk = grown.leave('n000');
      for (const p of movedPartitions(grown, shrunk)) if (grown.ownerOf(p) !== 'n000') return false;
      return true;
    }),
    { numRuns: 25 },
  );
});

test('balanced: in one rack, any N consecutive partitions have distinct owners after joins, so replica load stays even', () => {
  let ring = Ring.create({ nodes: nodes(4) });
  for (let i = 0; i < 6; i++) ring = ring.join(node(`later-${i}`));
  ring = ring.leave('node-001');
  const owners = ring.ownerIndexes();
  const q = owners.length;
  let clashes = 0;
  for (let p = 0; p < q; p++) if (new Set([owners[p], owners[(p + 1) % q], owners[(p + 2) % q]]).size < 3) clashes++;
  assert.ok(clashes <= q * 0.01, `${clashes} of ${q} windows repeat an owner`);
  const replicas = maxOverMean(replicaLoad(ring).values());
  assert.ok(replicas <= 1.05, `replica max/mean ${replicas}`);
});

test('balanced: replace hands exactly the old node’s partitions to the new node', () => {
  const ring = Ring.create({ nodes: nodes(8, 'n', 2) });
  const replaced = ring.replace('n003', node('n999', 'dc1', 'r2'));
  const moved = movedPartitions(ring, replaced);
  assert.deepEqual(moved, ring.partitionsOwnedBy('n003'));
  for (const p of moved) assert.equal(replaced.ownerOf(p), 'n999');
  assert.equal(replaced.epoch, ring.epoch + 1);
  assert.throws(() => ring.replace('nope', node('x')), { code: 'RINGKV_INVALID_ARGUMENT' });
});

test('balanced: smaller partition counts are runs of Redis slots', () => {
  const ring = Ring.create({ nodes: nodes(3), partitionCount: 256 });
  for (const key of keys(2000)) {
    const p = ring.partitionOf(key);
    const slot = ring.positionOf(key);
    const range = ring.partitionRange(p);
    assert.ok(range !== null && slot >= range.first && slot <= range.last);
    assert.equal(range.last - range.first + 1, redisSlotCount / 256);
  }
  assert.throws(() => Ring.create({ nodes: nodes(3), partitionCount: 1000 }), /power of two/);
  assert.throws(() => Ring.create({ nodes: nodes(5), partitionCount: 4 }), /Cannot place 5 nodes on 4 partitions/);
});

test('balanced: an empty ring accepts a first node and a last node can leave', () => {
  const empty = Ring.create({ nodes: [] });
  assert.deepEqual(empty.preferenceList(0), { home: [], fallbacks: [] });
  assert.equal(empty.ownerOf(0), undefined);
  const one = empty.join(node('solo'));
  assert.deepEqual(one.preferenceList(123).home, ['solo']);
  const two = one.join(node('duo'));
  assert.equal(two.partitionsOwnedBy('duo').length, redisSlotCount / 2);
  assert.deepEqual(two.preferenceList(5).home.length, 2);
  const none = two.leave('duo').leave('solo');
  assert.deepEqual(none.preferenceList(9).home, []);
  assert.throws(() => none.leave('solo'), /not in the ring/);
});

test('balanced: a fresh layout over any DCs and racks gives every node ⌊Q/S⌋ or ⌈Q/S⌉ partitions', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom(64, 1024, 16384), (s, racks, dcs, q) => {
      if (s > q) return true;
      const loads = [...partitionLoad(Ring.create({ nodes: nodes(s, 'n', racks, dcs), partitionCount: q })).values()];
      return Math.min(...loads) === Math.floor(q / s) && Math.max(...loads) === Math.ceil(q / s);
    }),
    { numRuns: 60 },
  );
});

test('balanced: a fresh layout spaces each rack’s partitions evenly, so replica load follows partition load', () => {
  // 3 equal racks: each partition's 3 replicas are one per rack and every node carries the same load.
  const equal = Ring.create({ nodes: nodes(12, 'n', 3) });
  assert.ok(maxOverMean(replicaLoad(equal).values()) <= 1.001);
  // Racks of 17, 17 and 16 nodes: the smaller rack's nodes must carry 17/16 of the others' share, no more than a little over.
  const uneven = Ring.create({ nodes: nodes(50, 'n', 3) });
  assert.ok(maxOverMean(replicaLoad(uneven).values()) <= 1.08, `replica max/mean ${maxOverMean(replicaLoad(uneven).values())}`);
});
