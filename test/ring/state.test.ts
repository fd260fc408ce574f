import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { Ring, type NodeDescriptor, type RingState } from '../../src/ring/index.ts';
import { keys, node, nodes } from './helpers.ts';

function shuffled<T>(items: readonly T[], order: readonly number[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (order[i % order.length] ?? 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const membership = fc.uniqueArray(
  fc.record({ id: fc.stringMatching(/^[a-z0-9-]{1,8}$/), dc: fc.constantFrom('dc1', 'dc2'), rack: fc.constantFrom('r1', 'r2', 'r3') }),
  { minLength: 1, maxLength: 30, selector: (n) => n.id },
);

test('same membership in any order gives an identical serialized ring and version', () => {
  fc.assert(
    fc.property(membership, fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), fc.constantFrom('balanced' as const, 'random' as const), (members, order, strategy) => {
      const options = strategy === 'balanced' ? { partitionCount: 1024 } : { tokensPerNode: 8 };
      const a = Ring.create({ strategy, nodes: members, ...options });
      const b = Ring.create({ strategy, nodes: shuffled(members, order), ...options });
      assert.deepEqual(a.toState(), b.toState());
      assert.equal(a.version, b.version);
      assert.deepEqual(pack(a.toState()), pack(b.toState()));
    }),
    { numRuns: 60 },
  );
});

test('the same history applied with lists in any order gives the same ring', () => {
  fc.assert(
    fc.property(membership, fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (members, order) => {
      const start = members.slice(0, Math.ceil(members.length / 2));
      const later = members.slice(start.length);
      const extra: NodeDescriptor[] = [node('zz-1', 'dc1', 'r9'), node('zz-2', 'dc2', 'r9')];
      const a = Ring.create({ nodes: start, partitionCount: 512 }).withMembers([...members, ...extra]);
      const b = Ring.create({ nodes: shuffled(start, order), partitionCount: 512 }).withMembers(shuffled([...extra, ...later, ...start], order));
      assert.equal(a.version, b.version);
      assert.deepEqual(a.toState(), b.toState());
      const dropped = shuffled(members, order).slice(0, 2).map((n) => n.id);
      const aa = a.withMembers(a.members().filter((n) => !dropped.includes(n.id)));
      const bb = b.withMembers(shuffled(b.members().filter((n) => !dropped.includes(n.id)), order));
      assert.equal(aa.version, bb.version);
      assert.equal(aa.epoch, 2);
    }),
    { numRuns: 40 },
  );
});

test('a ring survives msgpack and JSON round trips with the same version and placement', () => {
  for (const ring of [
    Ring.create({ nodes: nodes(7, 'n', 3, 2), replication: { perDc: { dc1: 2, dc2: 2 } } }).join(node('late', 'dc2', 'r1')),
    Ring.create({ strategy: 'random', nodes: nodes(6, 'n', 2), tokensPerNode: 32, replication: { n: 2 } }).leave('n002'),
    Ring.create({ nodes: [] }),
    Ring.create({ nodes: [], strategy: 'random' }),
  ]) {
    const viaMsgpack = Ring.fromState(unpack(pack(ring.toState())) as RingState);
    const viaJson = Ring.fromState(JSON.parse(JSON.stringify(ring.toState())) as RingState);
    for (const copy of [viaMsgpack, viaJson]) {
      assert.equal(copy.version, ring.version);
      assert.equal(copy.epoch, ring.epoch);
      assert.deepEqual(copy.replication(), ring.replication());
      for (const key of keys(500)) assert.deepEqual(copy.replicasOf(key), ring.replicasOf(key));
    }
  }
  const size = pack(Ring.create({ nodes: nodes(50) }).toState()).length;
  assert.ok(size < 64 * 1024, `a 50-node balanced state packs to ${size} bytes`);
});

test('the version changes with any change to the layout, and not with the epoch', () => {
  const ring = Ring.create({ nodes: nodes(5) });
  const versions = new Set([
    ring.version,
    ring.join(node('x')).version,
    ring.leave('node-000').version,
    ring.withReplication({ n: 2 }).version,
    ring.replace('node-001', node('y')).version,
    Ring.create({ nodes: nodes(5), partitionCount: 8192 }).version,
    Ring.create({ nodes: nodes(5), strategy: 'random' }).version,
  ]);
  assert.equal(versions.size, 7);
  const same = ring.withMembers(ring.members());
  assert.equal(same.epoch, ring.epoch + 1);
  assert.equal(same.version, ring.version);
});

test('fromState rejects malformed states with a message that names the problem', () => {
  const good = Ring.create({ nodes: nodes(3), partitionCount: 16 }).toState();
  const cases: Array<[Partial<RingState> & Record<string, unknown>, RegExp]> = [
    [{ format: 2 }, /format is 2/],
    [{ epoch: -1 }, /epoch -1/],
    [{ owners: good.owners?.slice(1) ?? null }, /owners must list 16 partitions/],
    [{ owners: (good.owners ?? []).map((o, i) => (i === 3 ? 7 : o)) }, /partition 3 has owner 7/],
    [{ owners: (good.owners ?? []).map((o, i) => (i === 4 ? 1.5 : o)) }, /partition 4 has owner 1.5/],
    [{ nodes: [...good.nodes].reverse() }, /not sorted/],
    [{ nodes: [good.nodes[0] as NodeDescriptor, good.nodes[0] as NodeDescriptor, good.nodes[1] as NodeDescriptor] }, /listed twice/],
    [{ strategy: 'ketama' as never }, /strategy "ketama"/],
    [{ partitionCount: 15 }, /power of two/],
    [{ replication: { n: 0 } }, /0 replicas/],
    [{ tokensPerNode: 4 }, /no tokensPerNode/],
    [{ nodes: [{ id: '', dc: 'dc1', rack: 'r1' }] }, /node id ""/],
    [{ nodes: [null as unknown as NodeDescriptor] }, /a node is an object/],
    [{ replication: null as never }, /replication must be/],
    [{ replication: { perDc: 'dc1' } as never }, /replication must be/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => Ring.fromState({ ...good, ...patch } as RingState), (e: Error & { code?: string }) => e.code === 'RINGKV_INVALID_ARGUMENT' && message.test(e.message), String(message));
  }
});

test('a node that moves rack keeps its partitions; the version still changes', () => {
  const ring = Ring.create({ nodes: nodes(6, 'n', 3) });
  const moved = ring.withMembers(ring.members().map((n) => (n.id === 'n002' ? { ...n, rack: 'r9' } : n)));
  assert.deepEqual(moved.partitionsOwnedBy('n002'), ring.partitionsOwnedBy('n002'));
  assert.deepEqual(Array.from(moved.ownerIndexes()), Array.from(ring.ownerIndexes()));
  assert.notEqual(moved.version, ring.version);
  assert.equal(moved.members().find((n) => n.id === 'n002')?.rack, 'r9');
});

test('creating a ring validates its input', () => {
  assert.throws(() => Ring.create({ nodes: [node('a'), node('a')] }), /listed twice/);
  assert.throws(() => Ring.create({ nodes: 'a,b' as never }), /give an array/);
  assert.throws(() => Ring.create({ nodes: nodes(2), replication: { n: 17 } }), /integer from 1 to 16/);
  assert.throws(() => Ring.create({ nodes: nodes(2), replication: { perDc: {} } }), /no data centers/);
  assert.throws(() => Ring.create({ nodes: nodes(2), strategy: 'random', tokensPerNode: 0 }), /0 tokens per node/);
  assert.throws(() => Ring.create({ nodes: nodes(2) }).join(node('node-000')), /already in the ring/);
  assert.throws(() => Ring.create({ nodes: nodes(2) }).preferenceList(16384), /partitions 0 to 16383/);
});

test('fromState meets arbitrary garbage in any field with InvalidArgumentError, never a crash', () => {
  const good = Ring.create({ nodes: nodes(3), partitionCount: 16 }).toState();
  const fields = Object.keys(good) as Array<keyof RingState>;
  fc.assert(
    fc.property(fc.constantFrom(...fields), fc.anything({ withBigInt: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true, withMap: true }), (field, value) => {
      try {
        Ring.fromState({ ...good, [field]: value } as RingState);
      } catch (e) {
        return (e as { code?: string }).code === 'RINGKV_INVALID_ARGUMENT';
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  // Found by the property above: a hostile toString, and holes in a sparse node list.
  assert.throws(() => Ring.fromState({ ...good, format: { toString: 0 } } as unknown as RingState), /format is \{"toString":0\}/);
  assert.throws(() => Ring.fromState({ ...good, nodes: new Array(2) } as unknown as RingState), /a node is an object/);
  assert.throws(() => Ring.fromState({ ...good, owners: (good.owners ?? []).map((o, i) => (i === 15 ? 0n : o)) } as unknown as RingState), /partition 15 has owner "0n"/);
  assert.throws(() => Ring.fromState({ ...good, owners: [Object.create(null), ...(good.owners ?? []).slice(1)] } as unknown as RingState), /partition 0 has owner \{\}/);
  for (const garbage of [null, 7, 'ring', [], { format: 1 }]) {
    assert.throws(() => Ring.fromState(garbage as unknown as RingState), { code: 'RINGKV_INVALID_ARGUMENT' });
  }
});
