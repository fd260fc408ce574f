/**
 * The Transport contract (src/core/env.ts) as one suite that every transport
 * runs: the TCP transport (tcp-conformance.test.ts) and the simulator's
 * network. Like abstract-level's compliance suite, it knows nothing about the
 * implementation; the factory hands it a fresh cluster for every test.
 *
 * Contract points checked here, beyond the interface's doc comments:
 * - `setAddress` is how a transport learns a peer; the suite calls it.
 * - a remote RingkvError arrives as the same class with the same code and
 *   message (and the class's extra fields); any other thrown Error arrives as
 *   an Error whose message contains the original message.
 * - without faults, one-way messages from one node to another arrive in the
 *   order they were sent.
 * - after `close()`, `send` is a silent no-op and `request` rejects with
 *   ClosedError; peers of the closed node see it as unreachable; closing
 *   twice is harmless (the suite's cleanup closes every member again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClosedError,
  ConflictError,
  RateLimitedError,
  RingkvError,
  TimeoutError,
  UnavailableError,
  type MessageHandler,
  type NodeId,
  type Transport,
  type WireMessage,
} from '../../src/core/index.ts';

export interface TransportTestMember {
  readonly transport: Transport;
  /** What other members pass to `setAddress` / `identify` to reach this one. */
  readonly address: string;
}

export interface TransportTestCluster {
  /** At least two members, not yet told about each other. */
  readonly members: readonly TransportTestMember[];
  /**
   * Makes member `index` unreachable from every other member (a stopped
   * process, a partition). Its own transport may or may not stay usable.
   */
  makeUnreachable(index: number): Promise<void>;
  /**
   * Settles `promise`. A transport on virtual time advances its clock until
   * the promise settles (or `limitMs` of virtual time passes); a real one
   * just awaits it.
   */
  settle<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  /** Lets time pass until `condition()` holds or `limitMs` passes; returns `condition()`. */
  waitUntil(condition: () => boolean, limitMs: number): Promise<boolean>;
  close(): Promise<void>;
}

interface Inbox {
  readonly messages: Array<{ from: NodeId; message: WireMessage }>;
  readonly requests: Array<{ from: NodeId; message: WireMessage }>;
}

/** A handler that records what it gets and answers requests by their `type`. */
function recordingHandler(
  answer: (from: NodeId, message: WireMessage) => Promise<WireMessage> = async (_from, message) => ({ type: 'test.echo', got: message }),
): { handler: MessageHandler; inbox: Inbox } {
  const inbox: Inbox = { messages: [], requests: [] };
  return {
    inbox,
    handler: {
      onMessage(from, message) {
        inbox.messages.push({ from, message });
      },
      onRequest(from, message) {
        inbox.requests.push({ from, message });
        return answer(from, message);
      },
    },
  };
}

function member(cluster: TransportTestCluster, index: number): TransportTestMember {
  const found = cluster.members[index];
  assert.ok(found, `the test cluster has no member ${index}`);
  return found;
}

/** Tells every member where every other member is. */
function connectAll(cluster: TransportTestCluster): void {
  for (const a of cluster.members) {
    for (const b of cluster.members) {
      if (a !== b) a.transport.setAddress(b.transport.localId, b.address);
    }
  }
}

async function withCluster(
  factory: () => Promise<TransportTestCluster>,
  body: (cluster: TransportTestCluster) => Promise<void>,
): Promise<void> {
  const cluster = await factory();
  try {
    assert.ok(cluster.members.length >= 2, 'a conformance cluster needs at least two members');
    connectAll(cluster);
    await body(cluster);
  } finally {
    await cluster.close();
  }
}

/** Waits for a promise to reject and returns the error. */
async function rejection(cluster: TransportTestCluster, promise: Promise<unknown>, limitMs?: number): Promise<unknown> {
  try {
    await cluster.settle(promise, limitMs);
  } catch (error) {
    return error;
  }
  assert.fail('expected the promise to reject, but it resolved');
}

export function runTransportConformance(name: string, factory: () => Promise<TransportTestCluster>): void {
  const t = (title: string, body: (cluster: TransportTestCluster) => Promise<void>): void => {
    test(`${name} transport: ${title}`, () => withCluster(factory, body));
  };

  t('a one-way message arrives with the sender id and its fields', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    const rb = recordingHandler();
    b.setHandler(rb.handler);
    a.setHandler(recordingHandler().handler);
    a.send(b.localId, { type: 'test.hello', n: 42, text: 'héllo', flag: true, none: null, list: [1, 'two', [3]] });
    assert.ok(await cluster.waitUntil(() => rb.inbox.messages.length === 1, 5_000), 'the message did not arrive');
    const got = rb.inbox.messages[0];
    assert.equal(got?.from, a.localId);
    assert.deepEqual(got?.message, { type: 'test.hello', n: 42, text: 'héllo', flag: true, none: null, list: [1, 'two', [3]] });
  });

  t('a request gets the handler reply, and the handler sees the sender', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    const rb = recordingHandler(async (from, message) => ({ type: 'test.sum', from, sum: Number(message.x) + Number(message.y) }));
    b.setHandler(rb.handler);
    a.setHandler(recordingHandler().handler);
    const reply = await cluster.settle(a.request(b.localId, { type: 'test.add', x: 2, y: 40 }, 5_000), 10_000);
    assert.deepEqual(reply, { type: 'test.sum', from: a.localId, sum: 42 });
    assert.equal(rb.inbox.requests.length, 1);
  });

  t('requests work in both directions and many may be in flight at once', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    a.setHandler(recordingHandler(async (_from, m) => ({ type: 'test.r', i: m.i, by: 'a' })).handler);
    b.setHandler(recordingHandler(async (_from, m) => ({ type: 'test.r', i: m.i, by: 'b' })).handler);
    const calls: Array<Promise<WireMessage>> = [];
    for (let i = 0; i < 100; i++) {
      calls.push(a.request(b.localId, { type: 'test.q', i }, 5_000));
      calls.push(b.request(a.localId, { type: 'test.q', i }, 5_000));
    }
    const replies = await cluster.settle(Promise.all(calls), 10_000);
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(replies[2 * i], { type: 'test.r', i, by: 'b' });
      assert.deepEqual(replies[2 * i + 1], { type: 'test.r', i, by: 'a' });
    }
  });

  t('Uint8Array, bigint and nested values round-trip', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    const rb = recordingHandler(async (_from, message) => ({ type: 'test.back', value: message.value, clock: message.clock }));
    b.setHandler(rb.handler);
    a.setHandler(recordingHandler().handler);
    const value = new Uint8Array(1000);
    for (let i = 0; i < value.length; i++) value[i] = (i * 7) & 0xff;
    const clock = { n1: 1n, n2: 2n ** 63n - 1n, neg: -(2n ** 63n), small: 0n };
    const reply = await cluster.settle(a.request(b.localId, { type: 'test.bytes', value, clock, empty: new Uint8Array(0) }, 5_000), 10_000);
    assert.ok(reply.value instanceof Uint8Array, 'a Uint8Array must arrive as a Uint8Array');
    assert.deepEqual([...reply.value], [...value]);
    assert.deepEqual(reply.clock, clock);
    const seen = rb.inbox.requests[0]?.message;
    assert.ok(seen?.empty instanceof Uint8Array && seen.empty.length === 0, 'an empty Uint8Array must stay an empty Uint8Array');
    assert.equal(typeof (seen?.clock as Record<string, unknown>).n1, 'bigint');
    // Numbers stay numbers (not bigints), including ones beyond 32 bits.
    const numbers = await cluster.settle(
      a.request(b.localId, { type: 'test.bytes', value: new Uint8Array([1]), clock: { big: 2 ** 40, neg: -(2 ** 35), half: 0.5 } }, 5_000),
      10_000,
    );
    assert.deepEqual(numbers.clock, { big: 2 ** 40, neg: -(2 ** 35), half: 0.5 });
  });

  t('a remote RingkvError arrives as the same class, code, message and fields', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    b.setHandler(
      recordingHandler(async (_from, message) => {
        if (message.type === 'test.conflict') throw new ConflictError('The version you sent is older than the stored one');
        if (message.type === 'test.unavailable') throw new UnavailableError('Only 1 of 2 replicas answered', { answered: 1, required: 2 });
        if (message.type === 'test.limited') throw new RateLimitedError('Too many requests: retry in 250 ms', 250);
        throw new Error('the handler broke: boom');
      }).handler,
    );
    a.setHandler(recordingHandler().handler);

    const conflict = await rejection(cluster, a.request(b.localId, { type: 'test.conflict' }, 5_000), 10_000);
    assert.ok(conflict instanceof ConflictError, `expected ConflictError, got ${String(conflict)}`);
    assert.equal(conflict.code, 'RINGKV_CONFLICT');
    assert.equal(conflict.message, 'The version you sent is older than the stored one');

    const unavailable = await rejection(cluster, a.request(b.localId, { type: 'test.unavailable' }, 5_000), 10_000);
    assert.ok(unavailable instanceof UnavailableError, `expected UnavailableError, got ${String(unavailable)}`);
    assert.equal(unavailable.answered, 1);
    assert.equal(unavailable.required, 2);

    const limited = await rejection(cluster, a.request(b.localId, { type: 'test.limited' }, 5_000), 10_000);
    assert.ok(limited instanceof RateLimitedError, `expected RateLimitedError, got ${String(limited)}`);
    assert.equal(limited.retryAfterMs, 250);

    const plain = await rejection(cluster, a.request(b.localId, { type: 'test.plain' }, 5_000), 10_000);
    assert.ok(plain instanceof Error);
    assert.match(plain.message, /the handler broke: boom/);
  });

  t('a request whose handler never answers rejects with TimeoutError', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    b.setHandler(recordingHandler(() => new Promise<WireMessage>(() => {})).handler);
    a.setHandler(recordingHandler().handler);
    const error = await rejection(cluster, a.request(b.localId, { type: 'test.never' }, 200), 10_000);
    assert.ok(error instanceof TimeoutError, `expected TimeoutError, got ${String(error)}`);
    assert.equal(error.code, 'RINGKV_TIMEOUT');
    // The transport still works after a timeout.
    b.setHandler(recordingHandler().handler);
    const reply = await cluster.settle(a.request(b.localId, { type: 'test.after' }, 5_000), 10_000);
    assert.equal(reply.type, 'test.echo');
  });

  t('an unreachable peer: requests reject as unavailable or timed out, send does not throw', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    a.setHandler(recordingHandler().handler);
    b.setHandler(recordingHandler().handler);
    await cluster.settle(a.request(b.localId, { type: 'test.warm' }, 5_000), 10_000);
    await cluster.makeUnreachable(1);
    a.send(b.localId, { type: 'test.lost' });
    const error = await rejection(cluster, a.request(b.localId, { type: 'test.q' }, 1_000), 10_000);
    assert.ok(
      error instanceof UnavailableError || error instanceof TimeoutError,
      `expected UnavailableError or TimeoutError, got ${String(error)}`,
    );
    // A node nobody has an address for is unavailable too.
    const unknown = await rejection(cluster, a.request('no-such-node', { type: 'test.q' }, 1_000), 10_000);
    assert.ok(
      unknown instanceof UnavailableError || unknown instanceof TimeoutError,
      `expected UnavailableError or TimeoutError, got ${String(unknown)}`,
    );
    a.send('no-such-node', { type: 'test.lost' });
  });

  t('one-way messages from one peer arrive in the order sent', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    const rb = recordingHandler();
    b.setHandler(rb.handler);
    a.setHandler(recordingHandler().handler);
    const count = 500;
    for (let i = 0; i < count; i++) a.send(b.localId, { type: 'test.seq', i });
    assert.ok(await cluster.waitUntil(() => rb.inbox.messages.length === count, 10_000), `only ${rb.inbox.messages.length} of ${count} arrived`);
    assert.deepEqual(
      rb.inbox.messages.map((m) => m.message.i),
      Array.from({ length: count }, (_, i) => i),
    );
  });

  t('identify(address) resolves with the node id behind the address', async (cluster) => {
    const a = member(cluster, 0).transport;
    const second = member(cluster, 1);
    a.setHandler(recordingHandler().handler);
    second.transport.setHandler(recordingHandler().handler);
    const id = await cluster.settle(a.identify(second.address, 5_000), 10_000);
    assert.equal(id, second.transport.localId);
  });

  t('close: send becomes a no-op, request rejects with ClosedError, peers see the node as gone', async (cluster) => {
    const a = member(cluster, 0).transport;
    const b = member(cluster, 1).transport;
    a.setHandler(recordingHandler().handler);
    b.setHandler(recordingHandler().handler);
    await cluster.settle(b.request(a.localId, { type: 'test.warm' }, 5_000), 10_000);
    await cluster.settle(a.close(), 10_000);
    a.send(b.localId, { type: 'test.after-close' });
    const own = await rejection(cluster, a.request(b.localId, { type: 'test.q' }, 1_000), 10_000);
    assert.ok(own instanceof ClosedError, `expected ClosedError, got ${String(own)}`);
    const fromPeer = await rejection(cluster, b.request(a.localId, { type: 'test.q' }, 1_000), 10_000);
    assert.ok(fromPeer instanceof RingkvError, `expected a RingkvError, got ${String(fromPeer)}`);
    assert.ok(['RINGKV_UNAVAILABLE', 'RINGKV_TIMEOUT'].includes(fromPeer.code), `unexpected code ${fromPeer.code}`);
  });
}
