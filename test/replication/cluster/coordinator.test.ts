import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimeoutError, UnavailableError, fromUtf8, utf8, type NodeId } from '../../../src/core/index.ts';
import { ReplicaBehindError, isFound, type GetResult, type ValueSibling } from '../../../src/replication/api.ts';
import { slotOf } from '../../../src/replication/keys.ts';
import { encodeContext } from '../../../src/replication/object.ts';
import { NamespaceReplication, StaticPlacement } from '../../../src/replication/placement.ts';
import { ReplicationCluster } from '../../../sim/replication/harness.ts';

function values(result: GetResult): string[] {
  return result.siblings.filter((s): s is ValueSibling => s.kind === 'value').map((s) => fromUtf8(s.value)).sort();
}

function homeOf(cluster: ReplicationCluster, key: string): NodeId[] {
  return [...cluster.placement.preferenceList(cluster.placement.partitionOfSlot(slotOf(utf8(key)))).home];
}

/** A key and a node that is not one of its home replicas. */
function keyWithOutsider(cluster: ReplicationCluster, prefix: string): { key: string; home: NodeId[]; outsider: NodeId } {
  for (let i = 0; ; i++) {
    const key = `${prefix}${i}`;
    const home = homeOf(cluster, key);
    const outsider = cluster.ids.find((id) => !home.includes(id));
    if (outsider !== undefined) return { key, home, outsider };
  }
}

async function newCluster(options: Partial<ConstructorParameters<typeof ReplicationCluster>[0]> = {}): Promise<ReplicationCluster> {
  const cluster = new ReplicationCluster({ seed: 7, nodes: 4, n: 3, ...options });
  await cluster.start();
  return cluster;
}

test('a write sent to a node that is not a replica is forwarded and readable from every node', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'fwd');
  await cluster.settle(cluster.node(outsider).kv.put(utf8(key), utf8('v1'), { w: 'all' }));
  assert.equal(cluster.node(outsider).coordinator.stats().writesForwarded, 1);
  const coordinated = home.map((id) => cluster.node(id).coordinator.stats().writesCoordinated).reduce((a, b) => a + b, 0);
  assert.equal(coordinated, 1);
  for (const id of home) {
    const stored = await cluster.node(id).store.read(utf8(key));
    assert.equal(stored?.versions.length, 1, `replica ${id} holds the write`);
  }
  for (const id of cluster.ids) {
    const result = await cluster.settle(cluster.node(id).kv.get(utf8(key), { r: 'all' }));
    assert.deepEqual(values(result), ['v1']);
  }
  cluster.shutdown();
});

test('a strict write fails with the number of replicas that answered when too few are up', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'strict');
  cluster.crash(home[1] as NodeId);
  cluster.crash(home[2] as NodeId);
  const error = await cluster.settle(cluster.node(outsider).kv.put(utf8(key), utf8('v'), { w: 'quorum', strict: true })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof UnavailableError, `expected UnavailableError, got ${String(error)}`);
  assert.equal(error.answered, 1);
  assert.equal(error.required, 2);
  assert.match(error.message, /1 of 2 required replicas answered/);
  // A read at quorum fails the same way; at one it succeeds from the live replica.
  const readError = await cluster.settle(cluster.node(outsider).kv.get(utf8(key), { r: 'quorum' })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(readError instanceof UnavailableError);
  const one = await cluster.settle(cluster.node(outsider).kv.get(utf8(key), { r: 'one' }));
  assert.deepEqual(values(one), ['v']);
  cluster.shutdown();
});

test('a write whose replicas are cut off times out and says how many answered', async () => {
  const cluster = await newCluster();
  const { key, home } = keyWithOutsider(cluster, 'cut');
  const coordinator = home[0] as NodeId;
  // Unnoticed by the failure detector: the coordinator waits for replies that never come.
  cluster.sim.partition([coordinator], [home[1] as NodeId, home[2] as NodeId]);
  const error = await cluster
    .settle(cluster.node(coordinator).kv.put(utf8(key), utf8('v'), { w: 'all', strict: true, timeoutMs: 300 }))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(error instanceof TimeoutError, `expected TimeoutError, got ${String(error)}`);
  assert.match(error.message, /1 of 3 required replicas answered within 300 ms/);
  cluster.shutdown();
});

test('read repair brings a stale replica up to date after a read', async () => {
  const cluster = await newCluster();
  const { key, home } = keyWithOutsider(cluster, 'repair');
  const [a, b, c] = home as [NodeId, NodeId, NodeId];
  cluster.sim.partition([a], [c]);
  await cluster.settle(cluster.node(a).kv.put(utf8(key), utf8('new'), { w: 2, strict: true, timeoutMs: 200 }));
  // The coordinator keeps a hint for c; take the hint path out of the picture by
  // reading before any replay could happen and checking c before and after.
  assert.equal(await cluster.node(c).store.read(utf8(key)), undefined);
  cluster.sim.heal();
  const result = await cluster.settle(cluster.node(b).kv.get(utf8(key), { r: 'all' }));
  assert.deepEqual(values(result), ['new']);
  await cluster.sim.run(50);
  const repaired = await cluster.node(c).store.read(utf8(key));
  assert.equal(repaired?.versions.length, 1);
  assert.ok(cluster.node(b).coordinator.stats().readRepairs >= 1);
  cluster.shutdown();
});

test('sloppy quorum: a write with one home replica down succeeds through a fallback and the hint reaches the owner', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'hint');
  const owner = home[2] as NodeId;
  cluster.crash(owner);
  await cluster.settle(cluster.node(home[0] as NodeId).kv.put(utf8(key), utf8('while-down'), { w: 'all' }));
  // The fourth node stood in for the owner and keeps the write as a hint, not as data.
  const standIn = cluster.node(outsider);
  assert.equal(standIn.handoff?.stats().backlog[owner]?.hints, 1);
  assert.equal(await standIn.store.read(utf8(key)), undefined);
  // A strict write cannot use the stand-in.
  const strict = await cluster.settle(cluster.node(home[0] as NodeId).kv.put(utf8(key), utf8('x'), { w: 'all', strict: true, timeoutMs: 300 })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(strict instanceof UnavailableError || strict instanceof TimeoutError);
  await cluster.restart(owner);
  await cluster.sim.runUntil(() => cluster.pendingHints() === 0, 10_000);
  assert.equal(cluster.pendingHints(), 0);
  const delivered = await cluster.node(owner).store.read(utf8(key));
  assert.ok(delivered !== undefined && delivered.versions.some((v) => fromUtf8(v.value) === 'while-down'));
  assert.ok((standIn.handoff?.stats().replayed ?? 0) >= 1);
  cluster.shutdown();
});

test('hint replay respects hintReplayRatePerSec', async () => {
  const rate = 20;
  const cluster = await newCluster({ handoff: { hintReplayRatePerSec: rate } });
  const owner = 'n3';
  cluster.crash(owner);
  const keys: string[] = [];
  for (let i = 0; keys.length < 100; i++) if (homeOf(cluster, `r${i}`).includes(owner)) keys.push(`r${i}`);
  for (const key of keys) {
    const coordinator = homeOf(cluster, key).find((id) => id !== owner) as NodeId;
    await cluster.settle(cluster.node(coordinator).kv.put(utf8(key), utf8('v'), { w: 'quorum' }));
  }
  const before = cluster.pendingHints();
  assert.equal(before, keys.length);
  await cluster.restart(owner);
  const start = cluster.sim.clock.nowMs();
  await cluster.sim.run(1000);
  const afterOneSecond = before - cluster.pendingHints();
  // Every node replays at most `rate` per second plus its initial burst of `rate`.
  const senders = cluster.ids.filter((id) => id !== owner).length;
  assert.ok(afterOneSecond <= 2 * rate * senders, `replayed ${afterOneSecond} in the first second`);
  const took = await cluster.sim.runUntil(() => cluster.pendingHints() === 0, 60_000);
  assert.ok(took !== undefined, 'every hint is replayed eventually');
  const elapsed = cluster.sim.clock.nowMs() - start;
  // The busiest sender had at least keys/senders hints at `rate` per second after its burst.
  assert.ok(elapsed >= ((keys.length / senders - rate) / rate) * 1000 - 1000, `all replayed after ${elapsed} ms`);
  for (const key of keys) assert.ok((await cluster.node(owner).store.read(utf8(key))) !== undefined);
  cluster.shutdown();
});

test('concurrent blind writes become siblings; a write with their context resolves them', async () => {
  const cluster = await newCluster();
  const { key, home } = keyWithOutsider(cluster, 'sib');
  // An empty context is a blind write: it supersedes nothing.
  const blind = encodeContext([]);
  await cluster.settle(Promise.all([
    cluster.node(home[0] as NodeId).kv.put(utf8(key), utf8('left'), { w: 'all', context: blind }),
    cluster.node(home[1] as NodeId).kv.put(utf8(key), utf8('right'), { w: 'all', context: blind }),
  ]));
  const both = await cluster.settle(cluster.node(home[2] as NodeId).kv.get(utf8(key), { r: 'all' }));
  assert.deepEqual(values(both), ['left', 'right']);
  await cluster.settle(cluster.node(home[2] as NodeId).kv.put(utf8(key), utf8('merged'), { w: 'all', context: both.context }));
  for (const id of cluster.ids) {
    assert.deepEqual(values(await cluster.settle(cluster.node(id).kv.get(utf8(key), { r: 'all' }))), ['merged']);
  }
  cluster.shutdown();
});

test('increments coordinated on different nodes all count', async () => {
  const cluster = await newCluster();
  const key = utf8('hits');
  const results = await cluster.settle(Promise.all(cluster.ids.flatMap((id) => [1n, 2n, 3n].map((d) => cluster.node(id).kv.incrBy(key, d, { w: 'quorum' })))));
  assert.equal(results.length, 12);
  const read = await cluster.settle(cluster.node('n1').kv.get(key, { r: 'all' }));
  const counter = read.siblings.find((s) => s.kind === 'counter');
  assert.equal(counter?.kind === 'counter' ? counter.count : undefined, 24n);
  cluster.shutdown();
});

test('a duplicated forwarded increment is applied once', async () => {
  const cluster = await newCluster({ faults: { duplicateRate: 1 } });
  const { key, outsider } = keyWithOutsider(cluster, 'dup');
  for (let i = 0; i < 5; i++) await cluster.settle(cluster.node(outsider).kv.incrBy(utf8(key), 1n, { w: 'all' }));
  const read = await cluster.settle(cluster.node(outsider).kv.get(utf8(key), { r: 'all' }));
  const counter = read.siblings.find((s) => s.kind === 'counter');
  assert.equal(counter?.kind === 'counter' ? counter.count : undefined, 5n);
  cluster.shutdown();
});

test('delete writes a tombstone every replica sees', async () => {
  const cluster = await newCluster();
  const key = utf8('gone');
  await cluster.settle(cluster.node('n1').kv.put(key, utf8('v'), { w: 'all' }));
  await cluster.settle(cluster.node('n2').kv.delete(key, { w: 'all' }));
  for (const id of cluster.ids) {
    const result = await cluster.settle(cluster.node(id).kv.get(key, { r: 'all' }));
    assert.equal(isFound(result), false);
  }
  cluster.shutdown();
});

test('scan pages through every key once, in storage order, from any node', async () => {
  const cluster = await newCluster();
  const written = new Set<string>();
  for (let i = 0; i < 60; i++) {
    const key = `scan:${i}`;
    written.add(key);
    await cluster.settle(cluster.node(cluster.ids[i % 4] as NodeId).kv.put(utf8(key), utf8('v'), { w: 'all' }));
  }
  await cluster.settle(cluster.node('n1').kv.delete(utf8('scan:0'), { w: 'all' }));
  written.delete('scan:0');
  for (const id of cluster.ids) {
    const seen: string[] = [];
    let cursor = '0';
    for (let page = 0; page < 100; page++) {
      const result = await cluster.settle(cluster.node(id).kv.scan(cursor, 7));
      seen.push(...result.keys.map(fromUtf8));
      cursor = result.cursor;
      if (cursor === '0') break;
    }
    assert.equal(cursor, '0');
    assert.deepEqual([...seen].sort(), [...written].sort(), `scan from ${id}`);
    assert.equal(new Set(seen).size, seen.length);
  }
  const count = await cluster.settle(cluster.node('n1').kv.approximateCount());
  assert.ok(Math.abs(count - 60) <= 2, `approximate count ${count}`);
  await cluster.settle(cluster.node('n2').kv.flushAll());
  const empty = await cluster.settle(cluster.node('n3').kv.scan('0', 100));
  assert.deepEqual(empty.keys, []);
  cluster.shutdown();
});

test('a forwarded write moves on to the next home replica when the first cannot be reached', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'next');
  // Crashed but not yet noticed: the forwarder tries it first and is refused.
  cluster.crash(home[0] as NodeId, { unnoticed: true });
  await cluster.settle(cluster.node(outsider).kv.put(utf8(key), utf8('v'), { w: 'quorum' }));
  assert.equal(cluster.node(home[1] as NodeId).coordinator.stats().writesCoordinated, 1);
  const result = await cluster.settle(cluster.node(outsider).kv.get(utf8(key), { r: 'quorum' }));
  assert.deepEqual(values(result), ['v']);
  cluster.shutdown();
});

test('a delete without a context supersedes what a quorum read finds, even on a stale coordinator', async () => {
  const cluster = await newCluster({ handoff: { hintReplayIntervalMs: 600_000 } });
  const { key, home } = keyWithOutsider(cluster, 'del');
  const [a, b] = home as [NodeId, NodeId, NodeId];
  cluster.sim.partition([a], cluster.ids.filter((id) => id !== a));
  await cluster.settle(cluster.node(b).kv.put(utf8(key), utf8('v'), { w: 2, strict: true }));
  cluster.sim.heal();
  assert.equal(await cluster.node(a).store.read(utf8(key)), undefined, 'a missed the write');
  await cluster.settle(cluster.node(a).kv.delete(utf8(key), { w: 'all' }));
  const result = await cluster.settle(cluster.node(b).kv.get(utf8(key), { r: 'all' }));
  assert.equal(isFound(result), false);
  cluster.shutdown();
});

test('local_quorum counts only replicas in the coordinator data center', async () => {
  const dcs: Record<string, string> = { n1: 'east', n2: 'west', n3: 'east', n4: 'west' };
  const cluster = await newCluster({ placement: (ids) => new StaticPlacement({ nodes: ids, partitions: 16, n: 3, dcs }) });
  const eastHeavy = (k: string): boolean => {
    const h = homeOf(cluster, k);
    return dcs[h[0] as NodeId] === 'east' && h.filter((id) => dcs[id] === 'east').length === 2;
  };
  const key = Array.from({ length: 1000 }, (_, i) => `lq${i}`).find(eastHeavy) as string;
  const home = homeOf(cluster, key);
  const local = home[0] as NodeId;
  const otherEast = home.find((id) => id !== local && dcs[id] === 'east') as NodeId;
  const west = home.find((id) => dcs[id] === 'west') as NodeId;
  // The remote data center is cut off: local_quorum still succeeds, all does not.
  cluster.sim.partition([local, otherEast], [west]);
  await cluster.settle(cluster.node(local).kv.put(utf8(key), utf8('v'), { w: 'local_quorum', strict: true, timeoutMs: 300 }));
  const all = await cluster.settle(cluster.node(local).kv.put(utf8(key), utf8('w'), { w: 'all', strict: true, timeoutMs: 300 })).then(() => undefined, (e: unknown) => e);
  assert.ok(all instanceof TimeoutError);
  cluster.sim.heal();
  // With the other local replica down, the remote answer does not make a local quorum.
  cluster.crash(otherEast);
  const error = await cluster.settle(cluster.node(local).kv.put(utf8(key), utf8('x'), { w: 'local_quorum', strict: true, timeoutMs: 300 })).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof UnavailableError, String(error));
  assert.equal(error.answered, 1);
  assert.equal(error.required, 2);
  cluster.shutdown();
});

test('N per namespace: a key in a namespace with N = 1 lives on one node and scans still find it', async () => {
  const cluster = await newCluster({ coordinator: { replication: new NamespaceReplication(3, { short: 1 }) } });
  const keys = Array.from({ length: 12 }, (_, i) => `short:${i}`);
  for (const key of keys) await cluster.settle(cluster.node('n2').kv.put(utf8(key), utf8('v'), { w: 'all' }));
  for (const key of keys) {
    let copies = 0;
    for (const id of cluster.ids) if ((await cluster.node(id).store.read(utf8(key))) !== undefined) copies++;
    assert.equal(copies, 1, `${key} has one copy`);
    await assert.rejects(cluster.settle(cluster.node('n1').kv.get(utf8(key), { r: 2 })), /N = 1/);
  }
  for (const id of cluster.ids) {
    const seen: string[] = [];
    let cursor = '0';
    for (let page = 0; page < 100; page++) {
      const result = await cluster.settle(cluster.node(id).kv.scan(cursor, 4));
      seen.push(...result.keys.map(fromUtf8));
      cursor = result.cursor;
      if (cursor === '0') break;
    }
    assert.deepEqual(seen.sort(), [...keys].sort(), `scan from ${id}`);
  }
  cluster.shutdown();
});

test('requests beyond maxInFlightPerPeer fail fast and leave a hint instead of queueing', async () => {
  const cluster = await newCluster({ coordinator: { maxInFlightPerPeer: 2 } });
  const home = homeOf(cluster, '{tag}');
  const coordinator = home[0] as NodeId;
  // The peers stop answering but nobody has noticed: requests to them pile up.
  cluster.sim.partition([coordinator], home.slice(1));
  const keys = Array.from({ length: 6 }, (_, i) => `{tag}${i}`);
  await cluster.settle(Promise.all(keys.map((key) => cluster.node(coordinator).kv.put(utf8(key), utf8('v'), { w: 'one', strict: true, timeoutMs: 300 }))));
  const stats = cluster.node(coordinator).coordinator.stats();
  // Two of six reach each peer; the other four per peer are refused at once.
  assert.equal(stats.overloaded, 8);
  await cluster.sim.run(500);
  assert.equal(cluster.node(coordinator).handoff?.stats().backlog[home[1] as NodeId]?.hints, 6);
  cluster.shutdown();
});

test('expiry: a version with a TTL reads as absent once it passes, and touch changes it on every replica', async () => {
  const cluster = await newCluster();
  const { key, outsider } = keyWithOutsider(cluster, 'ttl');
  const kv = cluster.node(outsider).kv;
  const now = cluster.sim.clock.wallMs();
  await cluster.settle(kv.put(utf8(key), utf8('short'), { w: 'all', expiresAtMs: now + 1000 }));
  await cluster.settle(kv.put(utf8(`${key}-kept`), utf8('kept'), { w: 'all', expiresAtMs: now + 1000 }));
  assert.equal(await cluster.settle(kv.touch(utf8(`${key}-kept`), null, { w: 'all' })), true);
  assert.equal(await cluster.settle(kv.touch(utf8('never-written'), null, { w: 'all' })), false);
  await cluster.sim.run(2000);
  assert.equal(isFound(await cluster.settle(kv.get(utf8(key), { r: 'all' }))), false);
  const kept = await cluster.settle(cluster.node('n1').kv.get(utf8(`${key}-kept`), { r: 'all' }));
  assert.deepEqual(values(kept), ['kept']);
  assert.equal(kept.siblings[0]?.expiresAtMs, null);
  cluster.shutdown();
});

test('a forwarded local_quorum write counts replicas in the data center of the node the client asked', async () => {
  const dcs: Record<string, string> = { n1: 'east', n2: 'east', n3: 'east', n4: 'west', n5: 'west' };
  const cluster = await newCluster({ nodes: 5, placement: (ids) => new StaticPlacement({ nodes: ids, partitions: 5, n: 3, dcs }) });
  // A key with two replicas in east and one in west, the client at a west node that is not a replica.
  const key = Array.from({ length: 5000 }, (_, i) => `dc${i}`).find((k) => homeOf(cluster, k).join() === 'n2,n3,n4') as string;
  cluster.crash('n4');
  // The write is forwarded to east (no west replica is up); local_quorum still means west.
  const error = await cluster.settle(cluster.node('n5').kv.put(utf8(key), utf8('v'), { w: 'local_quorum', strict: true, timeoutMs: 300 })).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof UnavailableError, String(error));
  assert.equal(error.required, 1);
  assert.equal(error.answered, 0);
  assert.equal(cluster.node('n2').coordinator.stats().writesCoordinated, 1);
  // From an east node the same write has its local quorum.
  await cluster.settle(cluster.node('n1').kv.put(utf8(key), utf8('v'), { w: 'local_quorum', strict: true, timeoutMs: 300 }));
  cluster.shutdown();
});

test('an overwrite put, forwarded from a non-replica, supersedes the siblings its coordinator holds', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'ovw');
  const blind = encodeContext([]);
  await cluster.settle(Promise.all([
    cluster.node(home[0] as NodeId).kv.put(utf8(key), utf8('left'), { w: 'all', context: blind }),
    cluster.node(home[1] as NodeId).kv.put(utf8(key), utf8('right'), { w: 'all', context: blind }),
  ]));
  assert.deepEqual(values(await cluster.settle(cluster.node(outsider).kv.get(utf8(key), { r: 'all' }))), ['left', 'right']);
  await cluster.settle(cluster.node(outsider).kv.put(utf8(key), utf8('last'), { w: 'all', overwrite: true }));
  for (const id of cluster.ids) {
    assert.deepEqual(values(await cluster.settle(cluster.node(id).kv.get(utf8(key), { r: 'all' }))), ['last']);
  }
  cluster.shutdown();
});

test('touch coordinated by a replica that missed the newer value fetches it first, so the old value does not come back', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'stale-touch');
  const [a, b, c] = home as [NodeId, NodeId, NodeId];
  const k = utf8(key);
  await cluster.settle(cluster.node(a).kv.put(k, utf8('old'), { w: 'all' }));
  // b and c take a newer value that a never hears of (no hint, no repair).
  const newer = await cluster.settle(cluster.node(b).store.coordinatePut(k, utf8('new'), (await cluster.node(b).store.read(k))?.context ?? null));
  await cluster.settle(newer.durable);
  await cluster.settle(cluster.node(c).store.apply(k, newer.object));
  assert.deepEqual(values(await cluster.settle(cluster.node(outsider).kv.get(k, { r: 'quorum', strict: true }))).length, 1);
  // The client's context is that of a read from b and c; a coordinates the touch.
  const context = encodeContext(newer.object.context);
  const expiresAtMs = cluster.sim.clock.wallMs() + 60_000;
  assert.equal(await cluster.settle(cluster.node(a).kv.touch(k, expiresAtMs, { context, w: 'all' })), true);
  assert.equal(cluster.node(a).coordinator.stats().touchCatchUps, 1);
  for (const id of home) {
    const result = await cluster.settle(cluster.node(id).kv.get(k, { r: 'all' }));
    assert.deepEqual(values(result), ['new'], `read at ${id}`);
    assert.equal(result.siblings[0]?.expiresAtMs, expiresAtMs);
  }
  // A replica that holds nothing at all catches up the same way instead of answering "no such key".
  const { key: key2, home: home2 } = keyWithOutsider(cluster, 'empty-touch');
  const [a2, b2, c2] = home2 as [NodeId, NodeId, NodeId];
  const k2 = utf8(key2);
  const only = await cluster.settle(cluster.node(b2).store.coordinatePut(k2, utf8('only'), null));
  await cluster.settle(only.durable);
  await cluster.settle(cluster.node(c2).store.apply(k2, only.object));
  assert.equal(await cluster.settle(cluster.node(a2).kv.touch(k2, expiresAtMs, { context: encodeContext(only.object.context), w: 'all' })), true);
  const read2 = await cluster.settle(cluster.node(a2).kv.get(k2, { r: 'all' }));
  assert.deepEqual(values(read2), ['only']);
  assert.equal(read2.siblings[0]?.expiresAtMs, expiresAtMs);
  cluster.shutdown();
});

test('a touch whose context no quorum of replicas has seen is refused, not applied to older versions', async () => {
  const cluster = await newCluster();
  const { key, home } = keyWithOutsider(cluster, 'lonely-touch');
  const [a, b] = home as [NodeId, NodeId, NodeId];
  const k = utf8(key);
  await cluster.settle(cluster.node(a).kv.put(k, utf8('old'), { w: 'all' }));
  // Only b holds the newer value, as after a write at W = 1 whose copies were lost.
  const newer = await cluster.settle(cluster.node(b).store.coordinatePut(k, utf8('new'), (await cluster.node(b).store.read(k))?.context ?? null));
  await cluster.settle(newer.durable);
  cluster.crash(b);
  const error = await cluster.settle(cluster.node(a).kv.touch(k, null, { context: encodeContext(newer.object.context), w: 'quorum' })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof ReplicaBehindError, `expected ReplicaBehindError, got ${String(error)}`);
  assert.match(error.message, /has not seen; read the key at quorum and try again/);
  const stored = await cluster.node(a).store.read(k);
  assert.deepEqual(stored?.versions.map((v) => fromUtf8(v.value)), ['old'], 'a wrote nothing');
  cluster.shutdown();
});

test('a forwarded write whose connection drops after it was sent is not retried on another replica (an increment counts once)', async () => {
  const cluster = await newCluster();
  const { key, home, outsider } = keyWithOutsider(cluster, 'reset');
  const k = utf8(key);
  // Messages to and from the forwarding node take 25–75 ms, so the connection
  // can drop after the request arrived and before the reply is back.
  cluster.sim.network.setSlow(outsider, 50);
  const outcome = cluster.node(outsider).kv.incrBy(k, 5n, { w: 'all' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  await cluster.sim.run(78);
  for (const id of home) cluster.sim.network.resetConnection(outsider, id);
  const error = await cluster.settle(outcome);
  assert.ok(error instanceof UnavailableError, `expected UnavailableError, got ${String(error)}`);
  assert.equal(error.maybeApplied, true);
  assert.match(error.message, /may have taken effect; it was not retried on another replica/);
  cluster.sim.network.setSlow(outsider, 0);
  await cluster.sim.run(500);
  const coordinated = home.map((id) => cluster.node(id).coordinator.stats().writesCoordinated).reduce((x, y) => x + y, 0);
  assert.equal(coordinated, 1, 'one replica coordinated the increment');
  const read = await cluster.settle(cluster.node(home[0] as NodeId).kv.get(k, { r: 'all' }));
  const counter = read.siblings.find((s) => s.kind === 'counter');
  assert.equal(counter?.kind === 'counter' ? counter.count : undefined, 5n);
  cluster.shutdown();
});
