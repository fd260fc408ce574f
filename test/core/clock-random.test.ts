import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageRouter, ProtocolError, SeededRandom, VirtualClock, crc16, utf8, type WireMessage } from '../../src/core/index.ts';

test('VirtualClock fires timers in time order, same-instant timers in the order set', async () => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  clock.setTimer(20, () => fired.push('b'));
  clock.setTimer(10, () => fired.push('a1'));
  clock.setTimer(10, () => fired.push('a2'));
  const cancelled = clock.setTimer(15, () => fired.push('never'));
  cancelled.cancel();
  await clock.advance(25);
  assert.deepEqual(fired, ['a1', 'a2', 'b']);
  assert.equal(clock.nowMs(), 25);
});

test('VirtualClock lets promise continuations run between timers', async () => {
  const clock = new VirtualClock();
  const order: string[] = [];
  void (async () => {
    await clock.sleep(5);
    order.push('after-sleep');
    await Promise.resolve();
    order.push('continuation');
  })();
  clock.setTimer(6, () => order.push('timer-6'));
  await clock.advance(10);
  assert.deepEqual(order, ['after-sleep', 'continuation', 'timer-6']);
});

test('VirtualClock.runUntil stops when the condition holds or the limit passes', async () => {
  const clock = new VirtualClock();
  let ticks = 0;
  const tick = (): void => {
    ticks++;
    clock.setTimer(100, tick);
  };
  clock.setTimer(100, tick);
  assert.equal(await clock.runUntil(() => ticks >= 3, 10_000), true);
  assert.equal(clock.nowMs(), 300);
  assert.equal(await clock.runUntil(() => ticks >= 1000, 1_000), false);
  assert.equal(clock.nowMs(), 1300);
});

test('SeededRandom replays the same stream for the same seed, and forks are stable', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const seqA = Array.from({ length: 100 }, () => a.u32());
  const seqB = Array.from({ length: 100 }, () => b.u32());
  assert.deepEqual(seqA, seqB);
  assert.notDeepEqual(seqA, Array.from({ length: 100 }, () => new SeededRandom(43).u32()));
  assert.deepEqual(new SeededRandom(7).fork('net').bytes(16), new SeededRandom(7).fork('net').bytes(16));
});

test('SeededRandom int stays in range and covers it', () => {
  const random = new SeededRandom(1);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const value = random.int(10);
    assert.ok(value >= 0 && value < 10);
    seen.add(value);
  }
  assert.equal(seen.size, 10);
});

test('crc16 matches the Redis Cluster test vector', () => {
  // From the Redis Cluster specification: CRC16 of "123456789" is 0x31C3.
  assert.equal(crc16(utf8('123456789')), 0x31c3);
});

test('MessageRouter dispatches by type prefix and rejects unknown requests', async () => {
  const router = new MessageRouter();
  const seen: string[] = [];
  router.register('gossip', {
    onMessage: (from, message) => seen.push(`${from}:${message.type}`),
    onRequest: async (_from, message): Promise<WireMessage> => ({ type: 'gossip.reply', echo: message.type }),
  });
  router.onMessage('n1', { type: 'gossip.syn' });
  router.onMessage('n1', { type: 'other.thing' });
  assert.deepEqual(seen, ['n1:gossip.syn']);
  assert.deepEqual(await router.onRequest('n2', { type: 'gossip.ping' }), { type: 'gossip.reply', echo: 'gossip.ping' });
  await assert.rejects(router.onRequest('n2', { type: 'kv.get' }), ProtocolError);
  assert.throws(() => router.register('gossip', { onMessage() {}, onRequest: async () => ({ type: 'x' }) }));
});
