import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom, TimeoutError, UnavailableError, VirtualClock, type NodeId, type WireMessage } from '../../src/core/index.ts';
import { SimNetwork, type NetworkFaults, type SimTransport } from '../../sim/network.ts';

interface Received {
  from: NodeId;
  message: WireMessage;
  at: number;
}

function setup(faults: Partial<NetworkFaults>, ids = ['a', 'b', 'c']): { clock: VirtualClock; network: SimNetwork; t: Record<string, SimTransport>; inbox: Record<string, Received[]> } {
  const clock = new VirtualClock();
  const network = new SimNetwork(clock, new SeededRandom(42), faults);
  const t: Record<string, SimTransport> = {};
  const inbox: Record<string, Received[]> = {};
  for (const id of ids) {
    const transport = network.attach(id, `sim://${id}`);
    const box: Received[] = [];
    inbox[id] = box;
    transport.setHandler({
      onMessage: (from, message) => box.push({ from, message, at: clock.nowMs() }),
      onRequest: async (_from, message) => ({ type: 'test.reply', echo: message.n ?? null }),
    });
    t[id] = transport;
  }
  for (const a of ids) for (const b of ids) t[a]?.setAddress(b, `sim://${b}`);
  return { clock, network, t, inbox };
}

test('sim network: loses about dropRate of messages and counts every one', async () => {
  const { clock, network, t, inbox } = setup({ dropRate: 0.2 });
  for (let i = 0; i < 4000; i++) t.a?.send('b', { type: 'test.m', i });
  await clock.advance(1000);
  const got = inbox.b?.length ?? 0;
  assert.ok(got > 4000 * 0.77 && got < 4000 * 0.83, `delivered ${got} of 4000 at 20% loss`);
  assert.equal(network.stats.dropped + got, 4000);
  assert.equal(network.stats.sent, 4000);
});

test('sim network: duplicates arrive twice and are counted', async () => {
  const { clock, network, t, inbox } = setup({ duplicateRate: 0.25 });
  for (let i = 0; i < 2000; i++) t.a?.send('b', { type: 'test.m', i });
  await clock.advance(1000);
  const got = inbox.b?.length ?? 0;
  assert.equal(got, 2000 + network.stats.duplicated);
  assert.ok(network.stats.duplicated > 400 && network.stats.duplicated < 600, `duplicated ${network.stats.duplicated}`);
  const seen = new Map<number, number>();
  for (const r of inbox.b ?? []) seen.set(Number(r.message.i), (seen.get(Number(r.message.i)) ?? 0) + 1);
  assert.ok([...seen.values()].every((c) => c === 1 || c === 2));
});

test('sim network: latency stays within bounds, and jitter reorders', async () => {
  const { clock, network, t, inbox } = setup({ minLatencyMs: 5, meanJitterMs: 20, maxLatencyMs: 60 });
  for (let i = 0; i < 500; i++) t.a?.send('b', { type: 'test.m', i });
  await clock.advance(1000);
  const arrivals = inbox.b ?? [];
  assert.equal(arrivals.length, 500);
  assert.ok(arrivals.every((r) => r.at >= 5 && r.at <= 60), 'every delay within [min, max]');
  const order = arrivals.map((r) => Number(r.message.i));
  const inversions = order.filter((v, i) => i > 0 && v < (order[i - 1] as number)).length;
  assert.ok(inversions > 50, `only ${inversions} inversions`);
  assert.ok(network.stats.reordered > 50);
});

test('sim network: without jitter, one link is FIFO', async () => {
  const { clock, t, inbox } = setup({});
  for (let i = 0; i < 200; i++) t.a?.send('b', { type: 'test.m', i });
  await clock.advance(100);
  assert.deepEqual(inbox.b?.map((r) => r.message.i), Array.from({ length: 200 }, (_, i) => i));
});

test('sim network: one-way and symmetric partitions, then heal', async () => {
  const { clock, network, t, inbox } = setup({});
  network.partition(['a'], ['b'], { oneWay: true });
  t.a?.send('b', { type: 'test.m', n: 1 });
  t.b?.send('a', { type: 'test.m', n: 2 });
  t.a?.send('c', { type: 'test.m', n: 3 });
  await clock.advance(50);
  assert.equal(inbox.b?.length, 0, 'a → b is cut');
  assert.equal(inbox.a?.length, 1, 'b → a still flows');
  assert.equal(inbox.c?.length, 1, 'a → c is unaffected');
  network.heal();
  network.partition(['a'], ['b', 'c']);
  t.b?.send('a', { type: 'test.m' });
  t.c?.send('a', { type: 'test.m' });
  t.b?.send('c', { type: 'test.m' });
  await clock.advance(50);
  assert.equal(inbox.a?.length, 1, 'nothing more reaches a');
  assert.equal(inbox.c?.length, 2, 'b → c flows');
  assert.equal(network.stats.partitioned, 3);
  network.heal();
  t.b?.send('a', { type: 'test.m' });
  await clock.advance(50);
  assert.equal(inbox.a?.length, 2);
});

test('sim network: a request across a cut times out; to a crashed node it is refused', async () => {
  const { clock, network, t } = setup({});
  network.partition(['a'], ['b']);
  const cut = t.a?.request('b', { type: 'test.q' }, 500);
  const cutResult = cut?.then(() => 'resolved', (e: unknown) => e);
  await clock.advance(600);
  assert.ok((await cutResult) instanceof TimeoutError);
  network.heal();
  t.c?.crash();
  const refused = t.a?.request('c', { type: 'test.q' }, 5000).then(() => 'resolved', (e: unknown) => e);
  await clock.advance(10);
  const error = await refused;
  assert.ok(error instanceof UnavailableError, String(error));
  assert.match((error as Error).message, /nothing is running at sim:\/\/c/);
  // Before the crash, a lost reply and a duplicate request still give one answer.
  const ok = t.a?.request('b', { type: 'test.q', n: 7 }, 500);
  await clock.advance(10);
  assert.deepEqual(await ok, { type: 'test.reply', echo: 7 });
});

test('sim network: payloads are copied, so nodes share no objects', async () => {
  const { clock, t, inbox } = setup({});
  const payload = { type: 'test.m', list: [1, 2], bytes: new Uint8Array([1, 2, 3]) };
  t.a?.send('b', payload);
  t.a?.send('c', payload);
  payload.list.push(3);
  (payload.bytes as Uint8Array)[0] = 9;
  await clock.advance(10);
  const atB = inbox.b?.[0]?.message;
  const atC = inbox.c?.[0]?.message;
  assert.deepEqual(atB?.list, [1, 2]);
  assert.deepEqual([...(atB?.bytes as Uint8Array)], [1, 2, 3]);
  assert.notEqual(atB, atC);
  assert.notEqual(atB?.list, atC?.list);
});

test('sim network: a slow node adds latency to what it sends and receives', async () => {
  const { clock, network, t, inbox } = setup({ minLatencyMs: 1 });
  network.setSlow('b', 200);
  t.a?.send('b', { type: 'test.m' });
  t.a?.send('c', { type: 'test.m' });
  await clock.advance(1000);
  assert.ok((inbox.b?.[0]?.at ?? 0) >= 100, 'at least half the extra delay');
  assert.equal(inbox.c?.[0]?.at, 1);
  assert.equal(network.stats.slowed, 1);
});

test('sim network: an address holds one node at a time', () => {
  const { network } = setup({});
  assert.throws(() => network.attach('z', 'sim://a'), /already in use/);
  assert.throws(() => network.attach('a', 'sim://other'), /already attached/);
});

test('sim network: a reset connection fails pending requests as "may have been applied" while the other side still serves them', async () => {
  const { clock, network, t } = setup({ minLatencyMs: 10 });
  const served: number[] = [];
  t.b?.setHandler({
    onMessage: () => {},
    onRequest: async (_from, message) => {
      served.push(Number(message.n));
      // A slow handler: its reply would come long after the reset is noticed.
      await new Promise<void>((resolve) => clock.setTimer(20, resolve));
      return { type: 'test.reply' };
    },
  });
  const pending = t.a?.request('b', { type: 'test.req', n: 1 }, 1000).then(
    () => undefined,
    (e: unknown) => e,
  );
  await clock.advance(12);
  network.resetConnection('a', 'b');
  await clock.advance(11);
  const error = await pending;
  assert.ok(error instanceof UnavailableError, String(error));
  assert.equal(error.maybeApplied, true);
  assert.match(error.message, /closed before it replied \(the request may have been applied\)/);
  assert.deepEqual(served, [1]);
  assert.equal(network.stats.resets, 1);
  // A killed process (resetConnections) fails what its peers asked of it at once; power loss leaves them to time out.
  const toC = t.a?.request('c', { type: 'test.req', n: 2 }, 1000).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.c?.crash(true);
  await clock.advance(11);
  const lost = await toC;
  assert.ok(lost instanceof UnavailableError && lost.maybeApplied, String(lost));
});
