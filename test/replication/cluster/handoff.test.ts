/**
 * Hint replay's two ways of dropping a hint: too old to replay safely (the
 * tombstones that superseded it may be purged), and refused by the owner for
 * what it holds. Everything else keeps the hint for the next attempt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  InvalidArgumentError,
  MemoryFileSystem,
  MemoryLogger,
  OverloadedError,
  TimeoutError,
  UnavailableError,
  VirtualClock,
  fromUtf8,
  utf8,
  type NodeId,
  type Transport,
  type WireMessage,
} from '../../../src/core/index.ts';
import { errorFromBody, errorToBody } from '../../../src/transport/codec.ts';
import { HintedHandoff, maxHintAgeFor, refusesHint, type HandoffOptions } from '../../../src/replication/handoff.ts';
import { HintStore } from '../../../src/replication/hint-store.ts';
import { oldestValueMs } from '../../../src/replication/cluster-kv.ts';
import { decodeObject, encodeObject, isLive } from '../../../src/replication/object.ts';
import { ManualLiveness } from '../../../src/replication/placement.ts';
import { ReplicaStore } from '../../../src/replication/replica-store.ts';
import { MemoryEngine } from '../../../src/storage/memory-engine.ts';
import type { ApplyRequest } from '../../../src/replication/messages.ts';

const owner: NodeId = 'n2';
const hourMs = 60 * 60_000;

/** A transport whose kv.apply answers come from `answer` (throw to fail the request). */
function fakeTransport(answer: (message: ApplyRequest) => Promise<void> | void): Transport & { sent: string[] } {
  const sent: string[] = [];
  return {
    localId: 'n1',
    sent,
    setAddress() {},
    send() {},
    async request(_to: NodeId, message: WireMessage): Promise<WireMessage> {
      const apply = message as unknown as ApplyRequest;
      sent.push(fromUtf8(apply.key));
      await answer(apply);
      return { type: 'kv.ack' };
    },
    async identify(): Promise<NodeId> {
      return owner;
    },
    setHandler() {},
    async close() {},
  };
}

async function setup(transport: Transport, options: HandoffOptions = {}) {
  const clock = new VirtualClock();
  const log = new MemoryLogger();
  const queue = await HintStore.open(new MemoryFileSystem(), '/hints');
  const liveness = new ManualLiveness();
  const handoff = new HintedHandoff({ localId: 'n1', clock, transport, liveness, queue, log, oldestValueMs }, options);
  // The coordinator's replica store: what it writes is what it would hint.
  const writer = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'n1' });
  const hint = async (key: string): Promise<void> => {
    const out = await writer.coordinatePut(utf8(key), utf8(`value of ${key}`), null);
    await out.durable;
    await handoff.store(owner, utf8(key), encodeObject(out.object));
  };
  return { clock, log, queue, liveness, handoff, writer, hint };
}

/** The owner refusing a hint, as the wire delivers it: the same class, rebuilt from its code. */
function fromOwner(error: Error): Error {
  return errorFromBody(errorToBody(error), owner);
}

test('a hint older than the maximum hint age is dropped unsent; younger ones are replayed', async () => {
  const transport = fakeTransport(() => undefined);
  const { clock, log, queue, handoff, hint } = await setup(transport, { maxHintAgeMs: hourMs });
  await hint('old-1');
  await hint('old-2');
  await clock.advance(hourMs + 1);
  await hint('young');
  await clock.advance(hourMs - 1000);
  // 'young' is just inside the limit, the two others past it.
  await handoff.kick(owner);
  assert.deepEqual(transport.sent, ['young']);
  const stats = handoff.stats();
  assert.equal(stats.expired, 2);
  assert.equal(stats.replayed, 1);
  assert.equal(queue.backlog(owner).hints, 0, 'dropped hints are acknowledged, not left queued');
  const warnings = log.records.filter((r) => r.level === 'warn');
  assert.equal(warnings.length, 1, 'one warning per batch, not per hint');
  assert.equal(warnings[0]?.fields['target'], owner);
  assert.equal(warnings[0]?.fields['hints'], 2);
});

test('while the owner is down, expired hints are dropped from the head of its queue once a minute, freeing the backlog', async () => {
  const transport = fakeTransport(() => undefined);
  const { clock, log, queue, liveness, handoff, hint } = await setup(transport, { maxHintAgeMs: hourMs });
  liveness.set(owner, false);
  await hint('old-1');
  await hint('old-2');
  await clock.advance(hourMs + 1);
  await hint('young');
  handoff.start();
  // The first tick sweeps; nothing is sent to a down owner.
  await clock.advance(1000);
  await clock.advance(10);
  assert.equal(queue.backlog(owner).hints, 1);
  assert.equal(handoff.stats().expired, 2);
  assert.deepEqual(transport.sent, []);
  assert.equal(log.records.filter((r) => r.level === 'warn' && r.message.includes('while their owner is down')).length, 1);
  // An hour later 'young' is old too: the sweeps (one a minute) have dropped it.
  await clock.advance(hourMs);
  await clock.advance(10);
  assert.equal(queue.backlog(owner).hints, 0);
  assert.equal(handoff.stats().expired, 3);
  assert.deepEqual(transport.sent, []);
  await handoff.stop();
});

/** A coordinator's replica store and handoff, and the owner's replica store that its replays apply to, on one virtual clock. */
async function ownerAndCoordinator(graceMs: number, maxHintAgeMs: (store: ReplicaStore) => number) {
  const clock = new VirtualClock();
  const ownerStore = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: owner, tombstoneGraceMs: graceMs });
  const coordinator = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'n1', tombstoneGraceMs: graceMs });
  const transport = fakeTransport(async (m) => {
    await ownerStore.apply(m.key, decodeObject(m.object), m.object);
  });
  const queue = await HintStore.open(new MemoryFileSystem(), '/hints');
  const handoff = new HintedHandoff(
    { localId: 'n1', clock, transport, liveness: new ManualLiveness(), queue, log: new MemoryLogger(), oldestValueMs },
    { maxHintAgeMs: maxHintAgeMs(coordinator) },
  );
  return { clock, ownerStore, coordinator, handoff };
}

test('without the age limit a hint from before a delete brings the value back once the tombstone is purged', async () => {
  // The scenario the limit exists for, end to end on the owner's replica store.
  const run = async (maxHintAgeMs: (store: ReplicaStore) => number): Promise<boolean> => {
    const graceMs = 24 * hourMs;
    const { clock, ownerStore, coordinator, handoff } = await ownerAndCoordinator(graceMs, maxHintAgeMs);
    const key = utf8('user:1');
    // The owner is down for the write: the coordinator keeps a hint of it.
    const put = await coordinator.coordinatePut(key, utf8('secret'), null);
    await put.durable;
    await handoff.store(owner, key, encodeObject(put.object));
    // The owner comes back and gets the delete (a later write, read repair…), but not the hint yet.
    await clock.advance(hourMs);
    const del = await coordinator.coordinateDelete(key, null);
    await del.durable;
    await ownerStore.apply(key, del.object);
    await clock.advance(graceMs + hourMs);
    await ownerStore.purge();
    await coordinator.purge();
    assert.equal(await ownerStore.read(key), undefined, 'the tombstone is purged');
    await handoff.kick(owner);
    const object = await ownerStore.read(key);
    return object !== undefined && object.versions.some((v) => v.kind === 'value' && isLive(v, clock.wallMs()));
  };
  // Control: with no effective limit (far past the grace period) the value does come back.
  assert.equal(await run(() => 1000 * hourMs), true, 'control: the limit is what keeps the value from coming back');
  assert.equal(await run((store) => maxHintAgeFor(store)), false, 'the default limit (half the grace period) drops the hint');
});

test('a hint of a delete is replayed however old: dropping it would let the value it deleted come back', async () => {
  const graceMs = 24 * hourMs;
  const { clock, ownerStore, coordinator, handoff } = await ownerAndCoordinator(graceMs, (store) => maxHintAgeFor(store));
  const key = utf8('user:1');
  // Both replicas hold the value; the owner is down for its delete, and stays down past the hint age.
  const put = await coordinator.coordinatePut(key, utf8('secret'), null);
  await put.durable;
  await ownerStore.apply(key, put.object);
  const del = await coordinator.coordinateDelete(key, null);
  await del.durable;
  await handoff.store(owner, key, encodeObject(del.object));
  await clock.advance(13 * hourMs);
  await handoff.kick(owner);
  assert.equal(handoff.stats().expired, 0);
  assert.equal(handoff.stats().replayed, 1);
  await clock.advance(graceMs);
  await ownerStore.purge();
  await coordinator.purge();
  const object = await ownerStore.read(key);
  assert.ok(object === undefined || !object.versions.some((v) => v.kind === 'value'), 'the deleted value stays deleted');
});

test('a hint is as old as its oldest value: a young sibling does not make an old one safe to replay', async () => {
  const { clock, writer } = await setup(fakeTransport(() => undefined));
  const tombstoneOnly = await writer.coordinateDelete(utf8('gone'), null);
  assert.equal(oldestValueMs(encodeObject(tombstoneOnly.object)), undefined, 'only tombstones: no age');
  const first = await writer.coordinatePut(utf8('k'), utf8('old'), null);
  await clock.advance(hourMs);
  // Without a context the second put is a sibling of the first, not its successor.
  const both = await writer.coordinatePut(utf8('k'), utf8('young'), null);
  assert.equal(both.object.versions.length, 2);
  assert.equal(oldestValueMs(encodeObject(both.object)), first.object.versions[0]?.timestampMs);
});

test('the maximum hint age defaults to half the grace period and may never reach it', () => {
  const store = { tombstoneGraceMs: 10 * hourMs };
  assert.equal(maxHintAgeFor(store), 5 * hourMs);
  assert.equal(maxHintAgeFor(store, { maxHintAgeMs: hourMs }), hourMs);
  assert.throws(() => maxHintAgeFor(store, { maxHintAgeMs: 10 * hourMs }), (e: unknown) => e instanceof InvalidArgumentError && /must be below the tombstone grace period/.test(e.message));
});

test('a hint its owner refuses is dropped and counted, and replay goes on with the next', async () => {
  const refusals: Record<string, Error> = {
    bad: fromOwner(new InvalidArgumentError('Key too long')),
    conflict: fromOwner(new ConflictError('no')),
  };
  const transport = fakeTransport((m) => {
    const refusal = refusals[fromUtf8(m.key)];
    if (refusal !== undefined) throw refusal;
  });
  const { log, queue, handoff, hint } = await setup(transport);
  for (const key of ['bad', 'ok-1', 'conflict', 'ok-2']) await hint(key);
  await handoff.kick(owner);
  assert.deepEqual(transport.sent, ['bad', 'ok-1', 'conflict', 'ok-2']);
  assert.equal(handoff.stats().rejected, 2);
  assert.equal(handoff.stats().replayed, 2);
  assert.equal(handoff.stats().replayFailures, 0);
  assert.equal(queue.backlog(owner).hints, 0);
  const warned = log.records.filter((r) => r.level === 'warn').map((r) => String(r.fields['key']));
  assert.equal(warned.length, 2);
  ['bad', 'conflict'].forEach((key, i) => assert.match(warned[i] ?? '', new RegExp(key)));
});

test('a hint whose bytes do not decode is dropped without being sent', async () => {
  const transport = fakeTransport(() => undefined);
  const { queue, handoff, hint } = await setup(transport);
  await handoff.store(owner, utf8('garbage'), utf8('not an object'));
  await hint('fine');
  await handoff.kick(owner);
  assert.deepEqual(transport.sent, ['fine']);
  assert.equal(handoff.stats().rejected, 1);
  assert.equal(queue.backlog(owner).hints, 0);
});

test('an owner that is unreachable, slow, closing or busy keeps the hint for the next attempt', async () => {
  const retryable: Error[] = [
    new UnavailableError('Cannot reach node n2', { answered: 0, required: 1 }),
    new TimeoutError('Node n2 did not answer'),
    new ClosedError('closed'),
    new OverloadedError('busy'),
    fromOwner(new OverloadedError('the owner is busy')),
    // From the owner, corruption may be in its own stored copy, not in the hint.
    fromOwner(new CorruptionError('The stored object of user:1 fails to decode')),
    new Error('Node n2 failed the request: something unexpected'),
  ];
  for (const error of retryable) {
    assert.equal(refusesHint(error), false, error.message);
    let failing = true;
    const transport = fakeTransport(() => {
      if (failing) throw error;
    });
    const { queue, handoff, hint } = await setup(transport);
    await hint('a');
    await hint('b');
    await handoff.kick(owner);
    assert.deepEqual(transport.sent, ['a'], 'replay stops at the first failure');
    assert.equal(handoff.stats().replayFailures, 1);
    assert.equal(handoff.stats().rejected, 0);
    assert.equal(queue.backlog(owner).hints, 2, `${error.constructor.name}: both hints kept`);
    failing = false;
    await handoff.kick(owner);
    assert.deepEqual(transport.sent, ['a', 'a', 'b']);
    assert.equal(queue.backlog(owner).hints, 0);
  }
});

test('a refused hint is acknowledged even when replay then stops at an unreachable owner', async () => {
  let reachable = true;
  const transport = fakeTransport((m) => {
    if (fromUtf8(m.key) === 'refused') throw fromOwner(new InvalidArgumentError('no'));
    if (!reachable) throw new UnavailableError('gone', { answered: 0, required: 1 });
  });
  const { queue, handoff, hint } = await setup(transport);
  await hint('refused');
  await hint('later');
  reachable = false;
  await handoff.kick(owner);
  assert.deepEqual(transport.sent, ['refused', 'later']);
  assert.equal(queue.backlog(owner).hints, 1, 'the refused hint is gone, the other kept');
  reachable = true;
  await handoff.kick(owner);
  assert.deepEqual(transport.sent, ['refused', 'later', 'later'], 'the refused hint is not sent again');
  assert.equal(handoff.stats().rejected, 1);
});
