/**
 * What only the TCP transport has: authentication, hostile bytes from raw
 * sockets, reconnecting to a restarted peer, and the back-pressure bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import {
  MemoryLogger,
  OverloadedError,
  RealClock,
  SeededRandom,
  UnauthorizedError,
  UnavailableError,
  type MessageHandler,
  type WireMessage,
} from '../../src/core/index.ts';
import { parseAddress, TcpTransport } from '../../src/transport/index.ts';
import { FrameType, protocolVersion } from '../../src/transport/constants.ts';
import { encodeHeader, FrameDecoder, type Frame } from '../../src/transport/frame.ts';
import { packBody, unpackBody } from '../../src/transport/codec.ts';
import { helloProof, newNonce, parseChallenge } from '../../src/transport/handshake.ts';
import { startTransport, testCluster, testSecret, waitUntil } from './helpers.ts';

const TcpTransportForTest = {
  /** Listens on 0.0.0.0 and advertises 127.0.0.1. */
  listenAll: (nodeId: string): Promise<TcpTransport> =>
    TcpTransport.listen({
      nodeId,
      clusterName: testCluster,
      secret: testSecret,
      host: '0.0.0.0',
      advertiseHost: '127.0.0.1',
      clock: new RealClock(),
      random: new SeededRandom(5),
      log: new MemoryLogger(),
    }),
};

const echo: MessageHandler = {
  onMessage() {},
  async onRequest(_from, message) {
    return { type: 'test.echo', got: message };
  },
};

/** Both transports know each other and answer with `echo`. */
function link(a: TcpTransport, b: TcpTransport): void {
  a.setAddress(b.localId, b.address);
  b.setAddress(a.localId, a.address);
  a.setHandler(echo);
  b.setHandler(echo);
}

async function closeAll(...transports: TcpTransport[]): Promise<void> {
  await Promise.all(transports.map((t) => t.close()));
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

/** A raw client socket that collects frames and notices when it is closed. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder(1 << 20);

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk, (frame) => { this.frames.push(frame); }));
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => {});
  }

  static async open(address: string): Promise<RawClient> {
    const { host, port } = parseAddress(address);
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Completes the handshake as node `nodeId` with the test secret. */
  async authenticate(nodeId: string): Promise<void> {
    assert.ok(await waitUntil(() => this.frames.length >= 1, 2_000), 'no challenge arrived');
    const challenge = parseChallenge(unpackBody((this.frames[0] as Frame).body));
    const nonce = newNonce();
    const proof = helloProof(Buffer.from(testSecret), testCluster, nodeId, challenge.nonce, nonce);
    this.writeFrame(FrameType.hello, 0, packBody({ version: protocolVersion, nodeId, cluster: testCluster, nonce, proof }));
    assert.ok(await waitUntil(() => this.frames.length >= 2 || this.closed, 2_000), 'no welcome arrived');
    assert.equal(this.frames[1]?.type, FrameType.welcome);
  }

  writeFrame(type: number, requestId: number, body: Buffer): void {
    this.socket.write(Buffer.concat([encodeHeader(type, requestId, body.length), body]));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A port with nothing listening on it (bound and released by us). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(typeof address === 'object' && address !== null);
  return address.port;
}

test('tcp: a peer with the wrong secret is refused, and the refusal says why', async () => {
  const serverLog = new MemoryLogger();
  const b = await startTransport({ nodeId: 'b', log: serverLog });
  const intruder = await startTransport({ nodeId: 'intruder', secret: 'not the cluster secret at all!!' });
  try {
    link(intruder, b);
    const error = await rejectionOf(intruder.request('b', { type: 'test.q' }, 2_000));
    assert.ok(error instanceof UnavailableError, `expected UnavailableError, got ${String(error)}`);
    assert.match(error.message, /node b at 127\.0\.0\.1:\d+.*failed authentication/);
    const probe = await rejectionOf(intruder.identify(b.address, 2_000));
    assert.ok(probe instanceof UnauthorizedError, `expected UnauthorizedError, got ${String(probe)}`);
    assert.ok(b.stats().handshakesRejected >= 2);
    assert.ok(serverLog.records.some((r) => r.level === 'warn' && /intruder.*failed authentication/.test(r.message)), 'the refusal was not logged');
    // The refused node never reached the handler.
    assert.equal(b.stats().requestsReceived, 0);
  } finally {
    await closeAll(b, intruder);
  }
});

test('tcp: a node of another cluster is refused even with the same secret', async () => {
  const b = await startTransport({ nodeId: 'b' });
  const other = await startTransport({ nodeId: 'other', clusterName: 'another-cluster' });
  try {
    const error = await rejectionOf(other.identify(b.address, 2_000));
    assert.ok(error instanceof UnauthorizedError);
    assert.match(error.message, /belongs to cluster "another-cluster"/);
  } finally {
    await closeAll(b, other);
  }
});

test('tcp: a listener that forges the welcome without the secret is refused', async () => {
  // A fake listener sends a challenge and then a welcome with a made-up proof.
  const a = await startTransport({ nodeId: 'a' });
  const liar = createServer((socket) => {
    socket.on('error', () => {});
    const challenge = packBody({ nonce: newNonce() });
    socket.write(Buffer.concat([encodeHeader(FrameType.challenge, 0, challenge.length), challenge]));
    socket.once('data', () => {
      const welcome = packBody({ nodeId: 'b', proof: Buffer.alloc(32, 7) });
      socket.write(Buffer.concat([encodeHeader(FrameType.welcome, 0, welcome.length), welcome]));
    });
  });
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
  const port = (liar.address() as { port: number }).port;
  try {
    const error = await rejectionOf(a.identify(`127.0.0.1:${port}`, 2_000));
    assert.ok(error instanceof UnauthorizedError, `expected UnauthorizedError, got ${String(error)}`);
    a.setAddress('b', `127.0.0.1:${port}`);
    const viaRequest = await rejectionOf(a.request('b', { type: 'test.q' }, 2_000));
    assert.ok(viaRequest instanceof UnavailableError);
  } finally {
    await a.close();
    await new Promise<void>((resolve) => liar.close(() => resolve()));
  }
});

test('tcp: oversized frames and garbage close only that connection; the node keeps serving others', async () => {
  const bLog = new MemoryLogger();
  const a = await startTransport({ nodeId: 'a' });
  const b = await startTransport({ nodeId: 'b', log: bLog, limits: { maxFrameBytes: 4096, maxQueuedBytesPerPeer: 1 << 20 } });
  link(a, b);
  const raws: RawClient[] = [];
  try {
    assert.equal((await a.request('b', { type: 'test.q', n: 1 }, 2_000)).type, 'test.echo');

    // Before authentication: a header announcing a frame bigger than the handshake limit.
    const big = await RawClient.open(b.address);
    raws.push(big);
    big.socket.write(encodeHeader(FrameType.hello, 0, 10_000));
    assert.ok(await waitUntil(() => big.closed, 2_000), 'an oversized handshake frame did not close the connection');

    // Before authentication: random garbage.
    const garbage = await RawClient.open(b.address);
    raws.push(garbage);
    garbage.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(await waitUntil(() => garbage.closed, 2_000), 'garbage did not close the connection');

    // After authentication: a frame over maxFrameBytes.
    const authedBig = await RawClient.open(b.address);
    raws.push(authedBig);
    await authedBig.authenticate('raw-1');
    authedBig.socket.write(encodeHeader(FrameType.message, 0, 4097));
    assert.ok(await waitUntil(() => authedBig.closed, 2_000), 'an oversized frame did not close the connection');

    // After authentication: a well-framed body that is not MessagePack.
    const authedJunk = await RawClient.open(b.address);
    raws.push(authedJunk);
    await authedJunk.authenticate('raw-2');
    // 0xc1 marks a compact body (wire.md §5.1); kind 0xc1 is none of them.
    authedJunk.writeFrame(FrameType.request, 7, Buffer.from([0xc1, 0xc1, 0xc1]));
    assert.ok(await waitUntil(() => authedJunk.closed, 2_000), 'a malformed body did not close the connection');

    // After authentication: an unknown frame type below 0x80 closes; one above is skipped.
    const skipper = await RawClient.open(b.address);
    raws.push(skipper);
    await skipper.authenticate('raw-3');
    skipper.writeFrame(0xa0, 0, Buffer.from('ignored extension'));
    skipper.writeFrame(FrameType.request, 9, packBody({ type: 'test.after-unknown' }));
    assert.ok(await waitUntil(() => skipper.frames.some((f) => f.type === FrameType.reply && f.requestId === 9), 2_000), 'no reply after an ignorable frame');
    skipper.writeFrame(0x42, 0, Buffer.alloc(0));
    assert.ok(await waitUntil(() => skipper.closed, 2_000), 'an unknown mandatory frame type did not close the connection');

    const reasons = bLog.records.filter((r) => r.level === 'warn' && r.message.startsWith('Closing the connection')).map((r) => r.message);
    assert.ok(reasons.some((m) => /10000 bytes: the limit is 1024/.test(m)), `no oversize reason logged: ${reasons.join(' | ')}`);
    assert.ok(reasons.some((m) => /4097 bytes: the limit is 4096/.test(m)), `no oversize reason logged: ${reasons.join(' | ')}`);
    assert.ok(reasons.some((m) => /not valid MessagePack|Compact body of unknown kind/.test(m)), `no malformed-body reason logged: ${reasons.join(' | ')}`);
    assert.ok(reasons.some((m) => /Unexpected frame type 66/.test(m)), `no unknown-type reason logged: ${reasons.join(' | ')}`);
    assert.ok(b.stats().protocolErrors >= 4);

    // The established peer was never disturbed.
    assert.equal((await a.request('b', { type: 'test.q', n: 2 }, 2_000)).type, 'test.echo');
    assert.equal(a.stats().connectionsOpened, 1);
  } finally {
    for (const raw of raws) raw.destroy();
    await closeAll(a, b);
  }
});

test('tcp: an unreachable peer is reported with its node id and address, without waiting for the timeout', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const port = await freePort();
  try {
    a.setAddress('ghost', `127.0.0.1:${port}`);
    const started = performance.now();
    const error = await rejectionOf(a.request('ghost', { type: 'test.q' }, 10_000));
    assert.ok(error instanceof UnavailableError, `expected UnavailableError, got ${String(error)}`);
    assert.match(error.message, new RegExp(`node ghost at 127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
    assert.ok(performance.now() - started < 5_000, 'a refused connection must fail fast');
    // During backoff the answer is immediate and says when the next attempt is.
    const again = await rejectionOf(a.request('ghost', { type: 'test.q' }, 10_000));
    assert.ok(again instanceof UnavailableError);
    assert.match(again.message, /next attempt in \d+ ms/);
    // Refusals in a burst share one error object (no stack trace built per refused request).
    const burst = await Promise.all([1, 2, 3].map(() => rejectionOf(a.request('ghost', { type: 'test.q' }, 10_000))));
    assert.equal(new Set(burst).size, 1);
    assert.ok(burst[0] instanceof UnavailableError);
    a.send('ghost', { type: 'test.lost' });
    assert.ok(a.stats().messagesDropped >= 1);
    const probe = await rejectionOf(a.identify(`127.0.0.1:${port}`, 2_000));
    assert.ok(probe instanceof UnavailableError, `expected UnavailableError, got ${String(probe)}`);
    assert.match(probe.message, new RegExp(`Cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    await assert.rejects(a.identify('no-port-here', 2_000), /expected host:port/);
  } finally {
    await a.close();
  }
});

test('tcp: an address that now belongs to another node is not used for the old one', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const c = await startTransport({ nodeId: 'c' });
  try {
    a.setAddress('b', c.address);
    c.setHandler(echo);
    const error = await rejectionOf(a.request('b', { type: 'test.q' }, 2_000));
    assert.ok(error instanceof UnavailableError);
    assert.match(error.message, /belongs to node c, not node b/);
    assert.equal(c.stats().requestsReceived, 0);
  } finally {
    await closeAll(a, c);
  }
});

test('tcp: a request sent before the peer moved to a new address fails as one that may have been applied', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const b = await startTransport({ nodeId: 'b' });
  try {
    link(a, b);
    b.setHandler({ onMessage() {}, onRequest: () => new Promise<WireMessage>(() => {}) });
    const inFlight = a.request('b', { type: 'test.slow' }, 5_000);
    await waitUntil(() => b.stats().requestsReceived >= 1, 2_000);
    a.setAddress('b', '127.0.0.1:1');
    const moved = await rejectionOf(inFlight);
    assert.ok(moved instanceof UnavailableError);
    assert.match(moved.message, /moved to 127\.0\.0\.1:1 before it replied/);
    assert.equal(moved.maybeApplied, true);
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: after the peer restarts on the same port, the transport reconnects', async () => {
  const a = await startTransport({ nodeId: 'a', limits: { baseBackoffMs: 20, maxBackoffMs: 200 } });
  let b = await startTransport({ nodeId: 'b' });
  const port = parseAddress(b.address).port;
  try {
    link(a, b);
    assert.equal((await a.request('b', { type: 'test.q' }, 2_000)).type, 'test.echo');
    // A request in flight when the peer dies is told the connection was lost.
    b.setHandler({ onMessage() {}, onRequest: () => new Promise<WireMessage>(() => {}) });
    const inFlight = a.request('b', { type: 'test.slow' }, 5_000);
    await waitUntil(() => b.stats().requestsReceived >= 2, 2_000);
    await b.close();
    const lost = await rejectionOf(inFlight);
    assert.ok(lost instanceof UnavailableError);
    assert.match(lost.message, /closed before it replied/);
    // It reached the peer, so it may have been carried out: a caller must not resend a non-idempotent write elsewhere.
    assert.equal(lost.maybeApplied, true);

    b = await startTransport({ nodeId: 'b', port });
    b.setHandler(echo);
    let reply: WireMessage | undefined;
    for (let attempt = 0; attempt < 100 && reply === undefined; attempt++) {
      try {
        reply = await a.request('b', { type: 'test.again' }, 1_000);
      } catch (error) {
        assert.ok(error instanceof UnavailableError, `unexpected ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.equal(reply?.type, 'test.echo');
    assert.equal(a.stats().connectionsOpened, 2);
    // Messages flow again too, in both directions.
    const got: string[] = [];
    a.setHandler({ onMessage: (_from, m) => { got.push(m.type); }, onRequest: echo.onRequest });
    b.setAddress('a', a.address);
    b.send('a', { type: 'test.back' });
    assert.ok(await waitUntil(() => got.includes('test.back'), 2_000));
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: the pending-request limit rejects with OverloadedError', async () => {
  const a = await startTransport({ nodeId: 'a', limits: { maxPendingRequestsPerPeer: 10 } });
  const b = await startTransport({ nodeId: 'b' });
  try {
    link(a, b);
    b.setHandler({ onMessage() {}, onRequest: () => new Promise<WireMessage>(() => {}) });
    const stuck = Array.from({ length: 10 }, (_, i) => a.request('b', { type: 'test.stuck', i }, 500).catch((e: unknown) => e));
    const error = await rejectionOf(a.request('b', { type: 'test.one-too-many' }, 2_000));
    assert.ok(error instanceof OverloadedError, `expected OverloadedError, got ${String(error)}`);
    assert.match(error.message, /10 requests awaiting replies: the limit is 10/);
    assert.equal(a.peerLoad('b').pendingRequests, 10);
    await Promise.all(stuck);
    assert.equal(a.peerLoad('b').pendingRequests, 0, 'timed-out requests must leave the pending table');
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: a peer that stops reading fills at most maxQueuedBytesPerPeer; then send drops and request rejects', async () => {
  const maxQueuedBytesPerPeer = 1 << 20;
  const a = await startTransport({ nodeId: 'a', limits: { maxQueuedBytesPerPeer, maxFrameBytes: 128 * 1024 } });
  // b holds every request and stops reading after the first: its inbound back-pressure.
  const b = await startTransport({ nodeId: 'b', limits: { maxInboundInFlightPerConnection: 1 } });
  try {
    link(a, b);
    b.setHandler({ onMessage() {}, onRequest: () => new Promise<WireMessage>(() => {}) });
    const payload = new Uint8Array(64 * 1024);
    let overloaded: Error | undefined;
    let highWater = 0;
    const outstanding: Array<Promise<unknown>> = [];
    for (let i = 0; i < 2_000 && overloaded === undefined; i++) {
      outstanding.push(a.request('b', { type: 'test.big', payload }, 20_000).catch((e: unknown) => {
        if (e instanceof OverloadedError) overloaded ??= e;
        return e;
      }));
      highWater = Math.max(highWater, a.peerLoad('b').queuedBytes);
      // Let the socket hand bytes to the kernel until its buffers are full too.
      if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(overloaded instanceof OverloadedError, 'the queue never filled');
    assert.match(overloaded.message, /send queue to node b holds \d+ bytes: the limit is 1048576/);
    assert.ok(highWater <= maxQueuedBytesPerPeer, `queued ${highWater} bytes, over the limit`);
    const dropsBefore = a.stats().messagesDropped;
    a.send('b', { type: 'test.big', payload });
    assert.equal(a.stats().messagesDropped, dropsBefore + 1);
    assert.ok(b.stats().requestsReceived < 10, `b kept reading: ${b.stats().requestsReceived} requests`);
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: an outgoing message over maxFrameBytes is refused locally', async () => {
  const a = await startTransport({ nodeId: 'a', limits: { maxFrameBytes: 1000 } });
  const b = await startTransport({ nodeId: 'b' });
  try {
    link(a, b);
    const error = await rejectionOf(a.request('b', { type: 'test.big', payload: new Uint8Array(2000) }, 2_000));
    assert.match(error.message, /Cannot send "test.big" to node b as it is \d+ bytes: the limit is 1000/);
    assert.equal(error.name, 'InvalidArgumentError');
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: requests to this node itself go through the handler', async () => {
  const a = await startTransport({ nodeId: 'a' });
  try {
    a.setHandler(echo);
    const reply = await a.request('a', { type: 'test.self', v: new Uint8Array([1, 2]) }, 1_000);
    const got = reply.got as { type: string; v: Uint8Array };
    assert.equal(got.type, 'test.self');
    assert.deepEqual([...got.v], [1, 2]);
    const seen: string[] = [];
    a.setHandler({ onMessage: (from, m) => { seen.push(`${from}:${m.type}`); }, onRequest: echo.onRequest });
    a.send('a', { type: 'test.note' });
    assert.ok(await waitUntil(() => seen.length === 1, 1_000));
    assert.deepEqual(seen, ['a:test.note']);
  } finally {
    await a.close();
  }
});

test('tcp: a burst bigger than one write buffer arrives complete and in order', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const b = await startTransport({ nodeId: 'b' });
  try {
    link(a, b);
    const got: number[] = [];
    b.setHandler({ onMessage: (_from, m) => { got.push(m.i as number); }, onRequest: echo.onRequest });
    const payload = new Uint8Array(1000).fill(7);
    const count = 3000; // about 3 MB queued in one turn of the event loop
    for (let i = 0; i < count; i++) a.send('b', { type: 'test.burst', i, payload });
    assert.ok(await waitUntil(() => got.length === count, 10_000), `only ${got.length} of ${count} arrived`);
    assert.deepEqual(got, Array.from({ length: count }, (_, i) => i));
    assert.equal(a.stats().messagesDropped, 0);
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: inbound connections over maxInboundConnections are refused at accept', async () => {
  const log = new MemoryLogger();
  const b = await startTransport({ nodeId: 'b', log, limits: { maxInboundConnections: 2 } });
  const raws: RawClient[] = [];
  try {
    for (let i = 0; i < 3; i++) raws.push(await RawClient.open(b.address));
    assert.ok(await waitUntil(() => raws[2]?.closed === true, 2_000), 'the third connection was not refused');
    assert.equal(raws[0]?.closed, false);
    assert.equal(raws[1]?.closed, false);
    assert.ok(log.records.some((r) => r.level === 'warn' && /the limit is 2/.test(r.message)));
  } finally {
    for (const raw of raws) raw.destroy();
    await b.close();
  }
});

test('tcp: an unauthenticated connection that stays silent is closed after the handshake timeout', async () => {
  const b = await startTransport({ nodeId: 'b', limits: { handshakeTimeoutMs: 200 } });
  const raw = await RawClient.open(b.address);
  try {
    assert.ok(await waitUntil(() => raw.closed, 3_000), 'a silent connection was kept open');
    assert.equal(raw.frames[0]?.type, FrameType.challenge);
  } finally {
    raw.destroy();
    await b.close();
  }
});

test('tcp: listen refuses a short secret, and a port in use with an IoError', async () => {
  await assert.rejects(startTransport({ nodeId: 'a', secret: 'short' }), /The cluster secret is 5 bytes: use at least 16/);
  const a = await startTransport({ nodeId: 'a' });
  try {
    await assert.rejects(startTransport({ nodeId: 'b', port: parseAddress(a.address).port }), (error: unknown) => {
      assert.ok(error instanceof Error && error.name === 'IoError', `expected IoError, got ${String(error)}`);
      assert.match(error.message, /Cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
      return true;
    });
  } finally {
    await a.close();
  }
});

test('tcp: random bytes after authentication never crash the node or disturb other peers (fuzz)', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const b = await startTransport({ nodeId: 'b', limits: { maxFrameBytes: 64 * 1024, maxQueuedBytesPerPeer: 1 << 20 } });
  link(a, b);
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 200 }),
            // A well-formed header with a random type and a random body.
            fc.record({ type: fc.integer({ min: 0, max: 255 }), id: fc.nat(), body: fc.uint8Array({ maxLength: 100 }) }).map(({ type, id, body }) =>
              Buffer.concat([encodeHeader(type, id, body.length), Buffer.from(body)]),
            ),
          ),
          { minLength: 1, maxLength: 5 },
        ),
        async (pieces) => {
          const raw = await RawClient.open(b.address);
          try {
            await raw.authenticate('fuzzer');
            for (const piece of pieces) raw.socket.write(piece);
            // Whatever happened to the fuzzer's connection, the real peer is served.
            const reply = await a.request('b', { type: 'test.q' }, 2_000);
            assert.equal(reply.type, 'test.echo');
          } finally {
            raw.destroy();
          }
        },
      ),
      { numRuns: 40 },
    );
    assert.ok(b.stats().protocolErrors > 0, 'the fuzzer never tripped the protocol checks');
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: a node listening on all interfaces advertises the host it was given', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const b = await TcpTransportForTest.listenAll('b');
  try {
    assert.match(b.address, /^127\.0\.0\.1:\d+$/);
    link(a, b);
    assert.equal((await a.request('b', { type: 'test.q' }, 2_000)).type, 'test.echo');
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: a request with a timeout that is not a number of milliseconds is refused', async () => {
  const a = await startTransport({ nodeId: 'a' });
  try {
    a.setAddress('b', '127.0.0.1:1');
    for (const timeoutMs of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      await assert.rejects(a.request('b', { type: 'test.q' }, timeoutMs), /A request timeout must be from 0 to 86400000 ms/);
    }
  } finally {
    await a.close();
  }
});

test('tcp: a node handles at most maxInboundInFlightPerConnection requests of one peer at once, and resumes', async () => {
  const a = await startTransport({ nodeId: 'a' });
  const b = await startTransport({ nodeId: 'b', limits: { maxInboundInFlightPerConnection: 3 } });
  try {
    link(a, b);
    let running = 0;
    let maxRunning = 0;
    b.setHandler({
      onMessage() {},
      async onRequest(_from, message) {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 2));
        running--;
        return { type: 'test.done', i: message.i };
      },
    });
    // 60 requests leave in one write, so they reach b in one or two chunks.
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => a.request('b', { type: 'test.slow', i }, 10_000)));
    assert.deepEqual(replies.map((r) => r.i), Array.from({ length: 60 }, (_, i) => i));
    assert.ok(maxRunning <= 3, `${maxRunning} requests ran at once; the limit is 3`);
    assert.equal(maxRunning, 3);
  } finally {
    await closeAll(a, b);
  }
});

test('tcp: requestThen tells its listener of the reply, a remote error, a timeout and a refusal, once each and never inside the call', async () => {
  const a = await startTransport({ nodeId: 'a', limits: { maxPendingRequestsPerPeer: 3 } });
  const b = await startTransport({ nodeId: 'b' });
  try {
    link(a, b);
    b.setHandler({
      onMessage() {},
      onRequest: (_from, message) => {
        if (message.type === 'test.fail') return Promise.reject(new OverloadedError('busy (test)'));
        if (message.type === 'test.stuck') return new Promise<WireMessage>(() => {});
        return Promise.resolve({ type: 'test.echo', got: message });
      },
    });
    const told: Array<[number, string]> = [];
    const listener = {
      replyReceived: (token: number, reply: WireMessage) => told.push([token, `reply ${String((reply.got as WireMessage).type)}`]),
      requestFailed: (token: number, error: Error) => told.push([token, `${error.name}: ${error.message}`]),
    };
    assert.equal(a.requestThen('b', { type: 'test.ok' }, 2_000, listener, 1), undefined);
    assert.equal(a.requestThen('b', { type: 'test.fail' }, 2_000, listener, 2), undefined);
    assert.equal(a.requestThen('b', { type: 'test.stuck' }, 50, listener, 3), undefined);
    assert.deepEqual(told, [], 'never told inside the call');
    // The pending limit (3) is reached: refused at once, sent nothing, never told.
    const refused = a.requestThen('b', { type: 'test.ok' }, 2_000, listener, 4);
    assert.ok(refused instanceof OverloadedError, `expected OverloadedError, got ${String(refused)}`);
    assert.ok(await waitUntil(() => told.length === 3, 5_000));
    const byToken = new Map<number, string>(told);
    assert.equal(byToken.get(1), 'reply test.ok');
    assert.match(byToken.get(2) ?? '', /busy \(test\)/);
    assert.match(byToken.get(3) ?? '', /TimeoutError: .*did not answer "test.stuck" within 50 ms/);
    assert.equal(a.peerLoad('b').pendingRequests, 0);
    // This node itself goes through the handler (loopback), reported the same way.
    a.setHandler(echo);
    assert.equal(a.requestThen('a', { type: 'test.self' }, 1_000, listener, 5), undefined);
    assert.ok(await waitUntil(() => told.length === 4, 5_000));
    assert.deepEqual(told[3], [5, 'reply test.self']);
    // A node with no known address is refused at once.
    assert.ok(a.requestThen('nobody', { type: 'test.ok' }, 1_000, listener, 6) instanceof UnavailableError);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(told.length, 4);
  } finally {
    await closeAll(a, b);
  }
});
