/**
 * Restarts under load: three nodes send requests and messages to each other
 * while nodes are closed and restarted on the same ports. Every request must
 * settle with a reply or a transport error (never hang, never crash), and
 * once the restarts stop every pair talks again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClosedError,
  OverloadedError,
  SeededRandom,
  TimeoutError,
  UnavailableError,
  type MessageHandler,
  type WireMessage,
} from '../../src/core/index.ts';
import { parseAddress, type TcpTransport } from '../../src/transport/index.ts';
import { startTransport } from './helpers.ts';

const ids = ['n0', 'n1', 'n2'];

const handler: MessageHandler = {
  onMessage() {},
  async onRequest(from, message) {
    // Some replies are slow, so restarts catch requests in flight.
    if (Number(message.i) % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    return { type: 'chaos.reply', from, i: message.i };
  },
};

test('tcp chaos: requests during restarts all settle, and the cluster heals', async () => {
  const random = new SeededRandom(42);
  const nodes: TcpTransport[] = [];
  for (const [i, nodeId] of ids.entries()) nodes.push(await startTransport({ nodeId, seed: i + 10, limits: { baseBackoffMs: 10, maxBackoffMs: 100 } }));
  const ports = nodes.map((n) => parseAddress(n.address).port);
  const wire = (): void => {
    for (const a of nodes) {
      a.setHandler(handler);
      for (const b of nodes) if (a !== b) a.setAddress(b.localId, b.address);
    }
  };
  wire();
  const outcomes = { replies: 0, unavailable: 0, timeouts: 0, closed: 0, overloaded: 0 };
  const calls: Array<Promise<void>> = [];
  let sequence = 0;
  try {
    const chaosEnd = performance.now() + 2_000;
    let nextRestart = performance.now() + 150;
    while (performance.now() < chaosEnd) {
      for (let k = 0; k < 20; k++) {
        const from = nodes[random.int(3)] as TcpTransport;
        const to = ids[random.int(3)] as string;
        const i = sequence++;
        from.send(to, { type: 'chaos.note', i });
        calls.push(
          from.request(to, { type: 'chaos.q', i }, 300).then(
            (reply: WireMessage) => {
              assert.equal(reply.i, i, 'a reply must answer its own request');
              outcomes.replies++;
            },
            (error: unknown) => {
              if (error instanceof UnavailableError) outcomes.unavailable++;
              else if (error instanceof TimeoutError) outcomes.timeouts++;
              else if (error instanceof ClosedError) outcomes.closed++;
              else if (error instanceof OverloadedError) outcomes.overloaded++;
              else throw error;
            },
          ),
        );
      }
      if (performance.now() >= nextRestart) {
        const victim = random.int(3);
        await nodes[victim]?.close();
        nodes[victim] = await startTransport({ nodeId: ids[victim] as string, port: ports[victim] as number, seed: sequence, limits: { baseBackoffMs: 10, maxBackoffMs: 100 } });
        wire();
        nextRestart = performance.now() + 150;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Every request settles: its timeout is 300 ms, so 5 s is a generous bound.
    let bound: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.all(calls).then(() => true),
      new Promise<boolean>((resolve) => {
        bound = setTimeout(() => resolve(false), 5_000);
      }),
    ]);
    clearTimeout(bound);
    assert.ok(settled, 'some requests never settled');
    assert.ok(outcomes.replies > 0, 'no request succeeded during the chaos');
    assert.ok(outcomes.unavailable + outcomes.closed > 0, `the restarts were never noticed: ${JSON.stringify(outcomes)}`);

    // Healing: every ordered pair answers within a bounded number of tries.
    for (const a of nodes) {
      for (const b of ids) {
        if (a.localId === b) continue;
        let ok = false;
        for (let attempt = 0; attempt < 100 && !ok; attempt++) {
          try {
            await a.request(b, { type: 'chaos.q', i: -1 }, 1_000);
            ok = true;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
        assert.ok(ok, `${a.localId} cannot reach ${b} after the restarts stopped`);
      }
    }
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});
