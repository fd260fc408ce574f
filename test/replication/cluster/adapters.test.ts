import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, UnavailableError, fromUtf8, utf8, type NodeId } from '../../../src/core/index.ts';
import { durableLater } from '../../../src/replication/index.ts';
import { Ring } from '../../../src/ring/index.ts';
import type { MemberView, MembershipEvent, MembershipListener } from '../../../src/membership/index.ts';
import { MembershipLiveness, RingPlacement } from '../../../src/replication/placement.ts';
import { slotOf } from '../../../src/replication/keys.ts';
import { ReplicationCluster } from '../../../sim/replication/harness.ts';

function ringOf(ids: readonly NodeId[]): Ring {
  return Ring.create({ nodes: ids.map((id, i) => ({ id, dc: i % 2 === 0 ? 'east' : 'west', rack: `r${i}` })), replication: { n: 3 }, partitionCount: 64 });
}

test('RingPlacement follows the current ring', () => {
  let ring = ringOf(['a', 'b', 'c', 'd']);
  const placement = new RingPlacement(() => ring);
  const key = utf8('user:1');
  const partition = placement.partitionOfSlot(slotOf(key));
  assert.equal(partition, ring.partitionOf(key));
  assert.deepEqual(placement.preferenceList(partition), ring.replicasOf(key));
  assert.equal(placement.dcOf('b'), 'west');
  assert.deepEqual([...placement.nodes()].sort(), ['a', 'b', 'c', 'd']);
  ring = ringOf(['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual([...placement.nodes()].sort(), ['a', 'b', 'c', 'd', 'e']);
});

test('MembershipLiveness reports only transitions between up and not up', () => {
  const listeners = new Set<MembershipListener>();
  const up = new Set<NodeId>(['a']);
  const membership = {
    isUp: (id: NodeId) => up.has(id),
    onChange(listener: MembershipListener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const view = (id: NodeId, liveness: MemberView['liveness']): MemberView => ({ id, liveness }) as MemberView;
  const emit = (event: MembershipEvent): void => {
    for (const l of listeners) l(event);
  };
  const seen: Array<[NodeId, boolean]> = [];
  const liveness = new MembershipLiveness(membership);
  const stop = liveness.onChange((node, isUp) => seen.push([node, isUp]));
  assert.equal(liveness.isUp('a'), true);
  assert.equal(liveness.isUp('b'), false);
  emit({ type: 'member', member: view('b', 'up'), previous: undefined });
  emit({ type: 'member', member: view('b', 'up'), previous: view('b', 'up') });
  emit({ type: 'member', member: view('b', 'suspect'), previous: view('b', 'up') });
  emit({ type: 'member', member: view('b', 'down'), previous: view('b', 'suspect') });
  emit({ type: 'member', member: view('b', 'up'), previous: view('b', 'down') });
  assert.deepEqual(seen, [['b', true], ['b', false], ['b', true]]);
  stop();
  emit({ type: 'member', member: view('b', 'down'), previous: view('b', 'up') });
  assert.equal(seen.length, 3);
});

test('the coordinator works over a real balanced ring: writes, reads and a full scan', async () => {
  const cluster = new ReplicationCluster({ seed: 3, nodes: 5, placement: (ids) => {
      const ring = ringOf(ids);
      return new RingPlacement(() => ring);
    },
  });
  await cluster.start();
  const keys = Array.from({ length: 40 }, (_, i) => `ring:${i}`);
  for (const [i, key] of keys.entries()) await cluster.settle(cluster.node(cluster.ids[i % 5] as NodeId).kv.put(utf8(key), utf8(key), { w: 'all' }));
  for (const key of keys) {
    const result = await cluster.settle(cluster.node('n1').kv.get(utf8(key), { r: 'all' }));
    assert.deepEqual(result.siblings.map((s) => (s.kind === 'value' ? fromUtf8(s.value) : s.kind)), [key]);
  }
  const seen: string[] = [];
  let cursor = '0';
  for (let i = 0; i < 200; i++) {
    const page = await cluster.settle(cluster.node('n4').kv.scan(cursor, 5));
    seen.push(...page.keys.map(fromUtf8));
    cursor = page.cursor;
    if (cursor === '0') break;
  }
  assert.deepEqual(seen.sort(), [...keys].sort());
  cluster.shutdown();
});

test('ClusterKv putNow and putNowThen: a quorum write that copies a lent key and value, settles as put does, and throws bad input at once', async () => {
  const cluster = new ReplicationCluster({ seed: 5, nodes: 3 });
  await cluster.start();
  const kv = cluster.node('n1').kv;
  // Lent: the caller reuses both buffers as soon as the call returns.
  const key = Buffer.from('lent:key');
  const value = Buffer.from('first');
  const durable = kv.putNow(key, value, { w: 'all', overwrite: true, lent: true });
  assert.ok(typeof durable === 'object', 'a quorum write always waits for replicas');
  key.write('XXXX');
  value.write('XXXXX');
  await cluster.settle(durable as Promise<void>);
  const read = await cluster.settle(cluster.node('n2').kv.get(utf8('lent:key'), { r: 'all' }));
  assert.deepEqual(read.siblings.map((s) => (s.kind === 'value' ? fromUtf8(s.value) : s.kind)), ['first']);

  const told: Array<[number, boolean, unknown]> = [];
  let heard = (): void => undefined;
  const listener = {
    writeSettled: (token: number, failed: boolean, error: unknown) => {
      told.push([token, failed, error]);
      heard();
    },
  };
  const telling = (): Promise<void> => new Promise<void>((resolve) => (heard = resolve));
  let next = telling();
  assert.equal(kv.putNowThen(utf8('then:key'), utf8('v'), { w: 'all', overwrite: true }, listener, 7), durableLater);
  assert.deepEqual(told, [], 'never told inside the call');
  await cluster.settle(next);
  assert.deepEqual(told, [[7, false, undefined]]);

  // With two of three replicas down a write at W = all fails, and the listener hears why.
  cluster.crash('n2');
  cluster.crash('n3');
  told.length = 0;
  next = telling();
  kv.putNowThen(utf8('then:key'), utf8('w'), { w: 'all', overwrite: true, strict: true }, listener, 8);
  await cluster.settle(next);
  await assert.rejects(cluster.settle(kv.putNow(utf8('then:key'), utf8('w'), { w: 'all', overwrite: true, strict: true }) as Promise<void>), (e: unknown) => e instanceof UnavailableError);
  // Read through a function: the deepEqual above narrowed `told`'s type to that first entry.
  const heardNow = (): Array<[number, boolean, unknown]> => told;
  assert.equal(heardNow().length, 1);
  const [token, failed, error] = heardNow()[0] ?? [0, false, undefined];
  assert.equal(token, 8);
  assert.equal(failed, true);
  assert.ok(error instanceof UnavailableError, String(error));
  const tooLong = new Uint8Array(1 << 20);
  assert.throws(() => kv.putNow(tooLong, utf8('v')), InvalidArgumentError);
  assert.throws(() => kv.putNowThen(utf8('k'), utf8('v'), { expiresAtMs: -1 }, listener, 9), InvalidArgumentError);
  cluster.shutdown();
});
