/**
 * The coordinator's fast paths, over a loopback transport and fake replicas
 * whose durability the test controls: a write reaches the peers before the
 * local sync, the local ack counts only once durable, a read asks R replicas
 * and falls back, a down owner with no stand-in gets a hint without a request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  SeededRandom,
  TimeoutError,
  UnavailableError,
  VirtualClock,
  silentLogger,
  utf8,
  type MessageHandler,
  type NodeId,
  type Transport,
  type WireMessage,
} from '../../../src/core/index.ts';
import { Coordinator, unreachableSuspectMs, type CoordinatorOptions, type LocalWrite, type ObjectModel, type ReplicaBackend } from '../../../src/replication/coordinator.ts';
import type { HintedHandoff } from '../../../src/replication/handoff.ts';
import { ManualLiveness, StaticPlacement } from '../../../src/replication/placement.ts';
import { LatencyPercentile } from '../../../src/replication/quorum.ts';
import { decodeObject, encodeObject, objectsEqual, sameObject, type StoredObject } from '../../../src/replication/object.ts';
import { objectArb } from '../versioning/gen.ts';

/** An object is the set of values written to the key (merge: union). */
type Obj = string[];

const model: ObjectModel<Obj> = {
  encode: (o) => utf8(JSON.stringify(o)),
  decode: (b) => JSON.parse(Buffer.from(b).toString('utf8')) as Obj,
  merge: (a, b) => [...new Set([...a, ...b])].sort(),
  covers: (have, want) => have !== undefined && want.every((v) => have.includes(v)),
};

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The coordinator may stop listening once it has its quorum.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** A replica whose coordinated writes become durable when the test says so. */
class FakeBackend implements ReplicaBackend<Obj> {
  readonly data = new Map<string, Obj>();
  readonly syncs: Deferred[] = [];
  reads = 0;

  async read(key: Uint8Array): Promise<Obj | undefined> {
    this.reads++;
    return this.data.get(Buffer.from(key).toString());
  }
  async apply(key: Uint8Array, incoming: Obj): Promise<Obj> {
    const k = Buffer.from(key).toString();
    const merged = model.merge(this.data.get(k) ?? [], incoming);
    this.data.set(k, merged);
    return merged;
  }
  async coordinatePut(key: Uint8Array, value: Uint8Array): Promise<LocalWrite<Obj>> {
    const object = await this.apply(key, [Buffer.from(value).toString()]);
    const sync = deferred();
    this.syncs.push(sync);
    return { object, context: new Uint8Array(0), durable: sync.promise };
  }
  coordinateDelete(): Promise<LocalWrite<Obj>> {
    throw new Error('not used here');
  }
  coordinateIncr(): Promise<LocalWrite<Obj> & { value: bigint }> {
    throw new Error('not used here');
  }
  coordinateTouch(): Promise<LocalWrite<Obj> | undefined> {
    throw new Error('not used here');
  }
  async scan(): Promise<{ entries: never[]; done: boolean }> {
    return { entries: [], done: true };
  }
  async count(): Promise<number> {
    return this.data.size;
  }
  async flush(): Promise<void> {
    this.data.clear();
  }
}

/** A replica that can answer reads at once (as ReplicaStoreBackend does when the store has the object in memory). */
class SyncReadBackend extends FakeBackend {
  readsNow = 0;
  readNow(key: Uint8Array): Obj | undefined {
    this.readsNow++;
    return this.data.get(Buffer.from(key).toString());
  }
}

/** Delivers requests between in-process coordinators; `down` nodes refuse; a request not answered in time fails with TimeoutError. */
class Loopback {
  readonly handlers = new Map<NodeId, MessageHandler>();
  readonly down = new Set<NodeId>();
  readonly sent: Array<{ from: NodeId; to: NodeId; type: string }> = [];
  constructor(private readonly clock?: VirtualClock) {}

  transport(localId: NodeId): Transport {
    return {
      localId,
      setAddress: () => {},
      send: () => {},
      identify: () => Promise.reject(new Error('not used here')),
      setHandler: () => {},
      close: async () => {},
      request: async (to: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> => {
        this.sent.push({ from: localId, to, type: message.type });
        await Promise.resolve();
        if (this.down.has(to)) throw new UnavailableError(`Cannot reach node ${to}`, { answered: 0, required: 1 });
        const handler = this.handlers.get(to);
        if (handler === undefined) throw new Error(`no node ${to}`);
        const clock = this.clock;
        if (clock === undefined) return handler.onRequest(localId, message);
        return new Promise<WireMessage>((resolve, reject) => {
          const timer = clock.setTimer(timeoutMs, () => reject(new TimeoutError(`${to} did not answer within ${timeoutMs} ms`)));
          handler.onRequest(localId, message).then(resolve, reject).finally(() => timer.cancel());
        });
      },
    };
  }
}

function setup(options: { extraReads?: number; withHints?: boolean; syncReads?: boolean; readRepair?: boolean; coordinator?: CoordinatorOptions } = {}) {
  const ids: NodeId[] = ['n1', 'n2', 'n3'];
  const clock = new VirtualClock();
  const net = new Loopback(clock);
  const liveness = new ManualLiveness();
  const placement = new StaticPlacement({ nodes: ids, partitions: 4, n: 3 });
  const hints: Array<{ by: NodeId; owner: NodeId }> = [];
  const backends = new Map<NodeId, FakeBackend>();
  const coordinators = new Map<NodeId, Coordinator<Obj>>();
  for (const id of ids) {
    const backend = options.syncReads === true ? new SyncReadBackend() : new FakeBackend();
    backends.set(id, backend);
    const handoff = { store: async (owner: NodeId) => void hints.push({ by: id, owner }) } as unknown as HintedHandoff;
    const coordinator = new Coordinator<Obj>(
      {
        localId: id,
        clock,
        random: new SeededRandom(1),
        transport: net.transport(id),
        log: silentLogger,
        placement,
        liveness,
        backend,
        model,
        ...(options.withHints === true ? { handoff } : {}),
      },
      { readRepair: options.readRepair === true, ...(options.extraReads !== undefined ? { extraReads: options.extraReads } : {}), ...options.coordinator },
    );
    net.handlers.set(id, coordinator);
    coordinators.set(id, coordinator);
  }
  const node = (id: NodeId) => coordinators.get(id) as Coordinator<Obj>;
  const backend = (id: NodeId) => backends.get(id) as SyncReadBackend;
  return { clock, net, liveness, node, backend, hints };
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('a write goes to the peers before the local sync, and W = 2 is met by the peers alone', async () => {
  const { node, backend, net } = setup();
  let done = false;
  const write = node('n1')
    .write({ kind: 'put', key: utf8('k'), value: utf8('v1'), w: 2 })
    .then(() => (done = true));
  await flushMicrotasks();
  // The local sync has not finished, yet both peers already hold the write...
  assert.deepEqual(backend('n2').data.get('k'), ['v1']);
  assert.deepEqual(backend('n3').data.get('k'), ['v1']);
  assert.equal(net.sent.filter((m) => m.type === 'kv.apply').length, 2);
  // ...and their two acks are a quorum on their own.
  assert.equal(done, true);
  await write;
});

test('the local acknowledgement counts only once the write is durable', async () => {
  const { node, backend, net } = setup();
  net.down.add('n2');
  net.down.add('n3');
  let settled: string | undefined;
  void node('n1')
    .write({ kind: 'put', key: utf8('k'), value: utf8('v1'), w: 1 })
    .then(
      () => (settled = 'ok'),
      (error: Error) => (settled = error.name),
    );
  await flushMicrotasks();
  assert.equal(settled, undefined, 'answered W = 1 before the local write was durable');
  (backend('n1').syncs[0] as Deferred).resolve();
  await flushMicrotasks();
  assert.equal(settled, 'ok');
});

test('a failed local sync is not an acknowledgement', async () => {
  const { node, backend, net } = setup();
  net.down.add('n3');
  let failure: unknown;
  const write = node('n1')
    .write({ kind: 'put', key: utf8('k'), value: utf8('v1'), w: 2 })
    .catch((error: unknown) => (failure = error));
  await flushMicrotasks();
  (backend('n1').syncs[0] as Deferred).reject(new Error('disk full'));
  await write;
  assert.ok(failure instanceof UnavailableError, `expected UnavailableError, got ${String(failure)}`);
  assert.match((failure as Error).message, /1 of 2 required replicas answered/);
  assert.match((failure as Error).message, /disk full/);
});

test('a read at R = 2 asks this node and one peer, and the third only when one fails', async () => {
  const { node, backend, net, clock } = setup();
  for (const id of ['n1', 'n2', 'n3'] as const) backend(id).data.set('k', ['v1']);
  const result = await node('n1').read(utf8('k'), { r: 2 });
  assert.deepEqual(result, ['v1']);
  assert.equal(backend('n1').reads, 1);
  assert.equal(backend('n2').reads + backend('n3').reads, 1, 'asked both peers when one was enough');
  // The peer it asked now refuses: the read moves on to the other one at once.
  const asked = net.sent.find((m) => m.type === 'kv.read')?.to as NodeId;
  net.down.add(asked);
  const other = asked === 'n2' ? 'n3' : 'n2';
  const before = backend(other).reads;
  const again = await node('n1').read(utf8('k'), { r: 2 });
  assert.deepEqual(again, ['v1']);
  assert.equal(backend(other).reads, before + 1);
  assert.equal(clock.nowMs(), 0, 'waited for a timer instead of falling back at once');
});

test('a read skips a replica the failure detector marks down, and extraReads asks more', async () => {
  const { node, net } = setup({ extraReads: 1 });
  await node('n1').read(utf8('k'), { r: 1 });
  // R = 1 plus one extra: this node and one peer.
  assert.equal(net.sent.filter((m) => m.type === 'kv.read').length, 1);
  for (const extraReads of [0, 1]) {
    // With n2 down, R = 2 is this node and n3; an extra read has no live replica left to go to.
    const down = setup({ extraReads });
    down.liveness.set('n2', false);
    await down.node('n1').read(utf8('k'), { r: 2 });
    assert.deepEqual(
      down.net.sent.filter((m) => m.type === 'kv.read').map((m) => m.to),
      ['n3'],
    );
  }
});

test('a read that held replicas back asks them once readSpeculateMs passes', async () => {
  const { node, net, clock } = setup();
  // n1's peers hang: requests to them never answer.
  net.handlers.set('n2', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  net.handlers.set('n3', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  let failed: unknown;
  void node('n1')
    .read(utf8('k'), { r: 2, timeoutMs: 1000 })
    .catch((error: unknown) => (failed = error));
  await flushMicrotasks();
  assert.equal(net.sent.filter((m) => m.type === 'kv.read').length, 1);
  await clock.advance(300);
  assert.equal(net.sent.filter((m) => m.type === 'kv.read').length, 2);
  await clock.advance(800);
  assert.ok(failed instanceof Error);
});

test('an owner that is down with no stand-in gets a hint and no request', async () => {
  const { node, net, liveness, hints, backend } = setup({ withHints: true });
  liveness.set('n3', false);
  const write = node('n1').write({ kind: 'put', key: utf8('k'), value: utf8('v1'), w: 2 });
  await flushMicrotasks();
  (backend('n1').syncs[0] as Deferred).resolve();
  await write;
  await flushMicrotasks();
  assert.deepEqual(
    net.sent.map((m) => m.to),
    ['n2'],
  );
  assert.deepEqual(hints, [{ by: 'n1', owner: 'n3' }]);
});

test('sameObject never calls objects equal that encode differently, and knows a decoded copy', () => {
  const pairs = fc.oneof(
    fc.tuple(objectArb, objectArb),
    // One field apart.
    objectArb.chain((o) => fc.nat({ max: 7 }).map((which) => [o, perturb(o, which)] as [StoredObject, StoredObject])),
  );
  fc.assert(
    fc.property(pairs, ([a, b]) => {
      // Saying "different" for equal encodings only costs read repair a slower check; the reverse would skip a repair.
      if (sameObject(a, b)) assert.ok(objectsEqual(a, b));
    }),
    { numRuns: 500 },
  );
  // Equal content in distinct objects: the case read repair meets after every read.
  fc.assert(
    fc.property(objectArb, (o) => {
      assert.equal(sameObject(o, decodeObject(encodeObject(o))), true);
    }),
    { numRuns: 300 },
  );
});

function perturb(o: StoredObject, which: number): StoredObject {
  const v = o.versions[0];
  const c = o.context[0];
  if (v === undefined || c === undefined) return o;
  const versions = [...o.versions];
  const context = [...o.context];
  switch (which) {
    case 0: context[0] = { ...c, lastWallMs: c.lastWallMs + 1 }; break;
    case 1: context[0] = { ...c, counter: c.counter + 1 }; break;
    case 2: versions[0] = { ...v, timestampMs: v.timestampMs + 1 }; break;
    case 3: versions[0] = { ...v, expiresAtMs: v.expiresAtMs === null ? 1 : null }; break;
    case 4: versions[0] = { ...v, value: Buffer.concat([Buffer.from(v.value), Buffer.from([1])]) }; break;
    case 5: versions[0] = { ...v, dot: { ...v.dot, counter: v.dot.counter + 1 } }; break;
    case 6: versions[0] = { ...v, deletedAtMs: v.deletedAtMs === null ? 5 : null }; break;
    default: versions[0] = { ...v, counter: [...v.counter, { node: 'zz', epoch: 1, p: 1n, n: 0n }] }; break;
  }
  return { context, versions };
}

test('a peer the transport found unreachable is skipped by reads for unreachableSuspectMs; writes still try it (it may have restarted)', async () => {
  const { node, net, hints, backend, clock } = setup({ withHints: true });
  net.down.add('n3');
  const put = async (value: string): Promise<void> => {
    const write = node('n1').write({ kind: 'put', key: utf8('k'), value: utf8(value), w: 2 });
    await flushMicrotasks();
    for (const sync of backend('n1').syncs.splice(0)) sync.resolve();
    await write;
    await flushMicrotasks();
  };
  await put('v1');
  assert.equal(net.sent.filter((m) => m.to === 'n3').length, 1, 'the first write tries n3');
  await put('v2');
  assert.equal(net.sent.filter((m) => m.to === 'n3').length, 2, 'the second write did not try n3: only the failure detector may skip an owner');
  assert.equal(hints.length, 2);
  await node('n1').read(utf8('k'), { r: 2 });
  assert.equal(net.sent.filter((m) => m.to === 'n3').length, 2, 'a read asked the suspected peer');
  // Back within the suspicion window: the next write reaches it at once.
  net.down.delete('n3');
  await put('v3');
  assert.equal(net.sent.filter((m) => m.to === 'n3').length, 3);
  assert.equal(hints.length, 2);
  await clock.advance(unreachableSuspectMs);
  // The object n1 sends holds every write, so n3 catches up on the ones it missed.
  assert.deepEqual(backend('n3').data.get('k'), ['v1', 'v2', 'v3']);
});

test('a read at R = 2 over a replica that answers at once: no local promise, one peer asked, equal answers need no repair', async () => {
  const { node, backend, net } = setup({ syncReads: true, readRepair: true });
  for (const id of ['n1', 'n2', 'n3'] as const) backend(id).data.set('k', ['v1']);
  assert.deepEqual(await node('n1').read(utf8('k'), { r: 2 }), ['v1']);
  assert.equal(backend('n1').readsNow, 1);
  assert.equal(backend('n1').reads, 0, 'the local copy went through the promise path');
  assert.deepEqual(
    net.sent.map((m) => m.type),
    ['kv.read'],
  );
  // Absent everywhere asked: undefined, still no repair.
  assert.equal(await node('n1').read(utf8('absent'), { r: 2 }), undefined);
  await flushMicrotasks();
  assert.equal(net.sent.filter((m) => m.type === 'kv.apply').length, 0);
});

test('a read at R = 2 whose two answers differ returns their merge and repairs the replica behind', async () => {
  const { node, backend } = setup({ syncReads: true, readRepair: true });
  backend('n1').data.set('k', ['v1']);
  backend('n2').data.set('k', ['v1', 'v2']);
  backend('n3').data.set('k', ['v1', 'v2']);
  assert.deepEqual(await node('n1').read(utf8('k'), { r: 2 }), ['v1', 'v2']);
  await flushMicrotasks();
  assert.deepEqual(backend('n1').data.get('k'), ['v1', 'v2'], 'this node was not repaired');
  // A key this node lacks altogether is repaired too.
  backend('n2').data.set('only-remote', ['x']);
  backend('n3').data.set('only-remote', ['x']);
  assert.deepEqual(await node('n1').read(utf8('only-remote'), { r: 2 }), ['x']);
  await flushMicrotasks();
  assert.deepEqual(backend('n1').data.get('only-remote'), ['x']);
});

test('a read at R = 2 whose peer refuses asks the other peer at once; one whose peer hangs asks every replica at readSpeculateMs', async () => {
  const { node, backend, net, clock } = setup({ syncReads: true });
  for (const id of ['n1', 'n2', 'n3'] as const) backend(id).data.set('k', ['v1']);
  net.down.add('n2');
  assert.deepEqual(await node('n1').read(utf8('k'), { r: 2 }), ['v1']);
  assert.equal(clock.nowMs(), 0, 'waited for a timer instead of falling back at once');
  assert.ok(net.sent.some((m) => m.type === 'kv.read' && m.to === 'n3'));
  net.down.delete('n2');

  // n2 is the first choice again once its suspicion lapses; it hangs, n3 answers.
  await clock.advance(unreachableSuspectMs + 1);
  net.handlers.set('n2', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  net.sent.length = 0;
  let result: unknown;
  void node('n1')
    .read(utf8('k'), { r: 2, timeoutMs: 1000 })
    .then((r) => (result = r));
  await flushMicrotasks();
  assert.deepEqual(net.sent.map((m) => m.to), ['n2']);
  await clock.advance(260);
  await flushMicrotasks();
  assert.deepEqual(result, ['v1']);
  assert.ok(net.sent.some((m) => m.to === 'n3'), 'never asked the third replica');

  // Both peers hang: the read fails with a timeout, not before.
  net.handlers.set('n3', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  let failed: unknown;
  void node('n1')
    .read(utf8('k'), { r: 2, timeoutMs: 1000 })
    .catch((error: unknown) => (failed = error));
  await clock.advance(900);
  await flushMicrotasks();
  assert.equal(failed, undefined);
  await clock.advance(200);
  await flushMicrotasks();
  assert.ok((failed as unknown) instanceof TimeoutError, `expected TimeoutError, got ${String(failed)}`);
});

test('a pair read asks the peer with the fewest requests outstanding', async () => {
  const { node, backend, net } = setup({ syncReads: true });
  for (const id of ['n1', 'n2', 'n3'] as const) backend(id).data.set('k', ['v1']);
  // n2 (first in preference order) hangs on every request: reads pile up there.
  net.handlers.set('n2', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  void node('n1').read(utf8('k'), { r: 2, timeoutMs: 1000 });
  await flushMicrotasks();
  net.sent.length = 0;
  assert.deepEqual(await node('n1').read(utf8('k'), { r: 2 }), ['v1']);
  assert.deepEqual(
    net.sent.map((m) => m.to),
    ['n3'],
    'asked the peer that already had a request outstanding',
  );
});

test('a pair read asks a spare peer once its first peer is slower than recent reads (speculative retry), and the first answer wins', async () => {
  const { node, backend, net, clock } = setup({ syncReads: true, coordinator: { readRetryPercentile: 0.9, readRetryMinMs: 5 } });
  for (const id of ['n1', 'n2', 'n3'] as const) backend(id).data.set('k', ['v1']);
  // Before any read was timed, the spare waits as long as the general path would (250 ms).
  const n2 = net.handlers.get('n2') as MessageHandler;
  net.handlers.set('n2', { onMessage: () => {}, onRequest: (from, m) => clock.sleep(300).then(() => n2.onRequest(from, m)) });
  let first: unknown;
  void node('n1')
    .read(utf8('k'), { r: 2 })
    .then((r) => (first = r));
  await clock.advance(200);
  await flushMicrotasks();
  assert.equal(first, undefined, 'asked the spare before any read was timed');
  await clock.advance(60);
  await flushMicrotasks();
  assert.deepEqual(first, ['v1']);
  await clock.advance(100);
  // A few hundred fast reads (instant peers) teach it that reads take ~0 ms: the delay becomes readRetryMinMs.
  net.handlers.set('n2', n2);
  for (let i = 0; i < 300; i++) assert.deepEqual(await node('n1').read(utf8('k'), { r: 2 }), ['v1']);
  net.handlers.set('n2', { onMessage: () => {}, onRequest: () => new Promise<WireMessage>(() => {}) });
  net.sent.length = 0;
  let result: unknown;
  void node('n1')
    .read(utf8('k'), { r: 2 })
    .then((r) => (result = r));
  await flushMicrotasks();
  assert.deepEqual(net.sent.map((m) => m.to), ['n2']);
  await clock.advance(4);
  await flushMicrotasks();
  assert.equal(result, undefined, 'asked the spare sooner than readRetryMinMs');
  await clock.advance(2);
  await flushMicrotasks();
  assert.deepEqual(result, ['v1'], 'the spare was not asked at readRetryMinMs');
  assert.deepEqual(net.sent.map((m) => m.to), ['n2', 'n3']);
  assert.equal(node('n1').stats().readRetries, 2);
});

test('LatencyPercentile follows recent samples to within a bucket', () => {
  const p = new LatencyPercentile(0.95, 250, 100);
  assert.equal(p.valueMs, 250, 'the initial value before a window is full');
  for (let i = 1; i <= 100; i++) p.record(i / 10); // 0.1 .. 10 ms: p95 ≈ 9.5
  assert.ok(p.valueMs >= 9.5 / 1.25 && p.valueMs <= 9.5 * 1.25, `p95 of 0.1..10 ms read ${p.valueMs}`);
  // A slower period moves it up within a few windows (counts are halved each window).
  for (let w = 0; w < 4; w++) for (let i = 1; i <= 100; i++) p.record(40 + i / 10);
  assert.ok(p.valueMs >= 40 / 1.25 && p.valueMs <= 50 * 1.25, `after slower windows ${p.valueMs}`);
  assert.throws(() => new LatencyPercentile(1, 1), /between 0 and 1/);
});
