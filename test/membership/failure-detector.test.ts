/** Suspicion, confirmation and recovery, driven entry by entry on virtual time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gossipAck2, type MembershipEvent } from '../../src/membership/index.ts';
import { entry, makeMembership } from './helpers.ts';

/** Phi 8 at the 1000 ms mean floor: 8 / log10(e) seconds of silence. */
const suspectAfterMs = 8000 / Math.LOG10E;

test('failure detector: silence makes a peer suspect, but down needs another node to confirm', async () => {
  const { membership, clock } = makeMembership('a');
  membership.start();
  const events: MembershipEvent[] = [];
  membership.onChange((e) => events.push(e));
  const feed = (...entries: ReturnType<typeof entry>[]): void => membership.onMessage('x', { type: gossipAck2, entries });
  feed(entry('b', 1, 0), entry('c', 1, 0));
  // b keeps heartbeating without suspecting anyone; c falls silent.
  let version = 0;
  for (let t = 0; t < 60_000; t += 1000) {
    feed(entry('b', 1, ++version));
    await clock.advance(1000);
    if (t + 1000 < suspectAfterMs - 1000) assert.equal(membership.member('c')?.liveness, 'up', `c is up at ${t} ms`);
  }
  assert.equal(membership.member('c')?.liveness, 'suspect');
  assert.ok(!membership.isUp('c'));
  assert.equal(membership.member('b')?.liveness, 'up');
  // b now suspects c too: confirmation.
  feed(entry('b', 1, version + 1, { suspects: [['c', 1]] }));
  await clock.advance(1100);
  assert.equal(membership.member('c')?.liveness, 'down');

  // c restarts: a new generation is up at once, whatever the old suspicion said.
  feed(entry('c', 2, 0));
  assert.equal(membership.member('c')?.liveness, 'up');
  assert.equal(membership.member('c')?.generation, 2);
  await clock.advance(3000);
  assert.equal(membership.member('c')?.liveness, 'up', 'a suspicion of generation 1 does not confirm generation 2');

  const cStates = events.flatMap((e) => (e.type === 'member' && e.member.id === 'c' ? [e.member.liveness] : []));
  assert.deepEqual(cStates, ['up', 'suspect', 'down', 'up'], 'discovered, suspected, confirmed down, restarted');
});

test('failure detector: our own suspicions travel in our entry', async () => {
  const { membership, transport, clock } = makeMembership('a');
  membership.start();
  membership.onMessage('x', { type: gossipAck2, entries: [entry('b', 1, 0), entry('c', 4, 0)] });
  for (let t = 0; t < 30_000; t += 1000) {
    membership.onMessage('x', { type: gossipAck2, entries: [entry('b', 1, t / 1000 + 1)] });
    await clock.advance(1000);
  }
  transport.sent.length = 0;
  membership.onMessage('b', { type: gossipAck2, entries: [], ring: undefined });
  membership.onMessage('b', { type: 'gossip.ack', entries: [], want: ['a'], wantRing: false });
  const own = (transport.take(gossipAck2)[0]?.message.entries as Array<{ id: string; suspects: unknown }>)[0];
  assert.equal(own?.id, 'a');
  assert.deepEqual(own?.suspects, [['c', 4]]);
});

test('failure detector: with no other node to confirm (two nodes), local suspicion marks down', async () => {
  const { membership, clock } = makeMembership('a');
  membership.start();
  membership.onMessage('x', { type: gossipAck2, entries: [entry('b', 1, 0)] });
  await clock.advance(suspectAfterMs - 1500);
  assert.equal(membership.member('b')?.liveness, 'up');
  await clock.advance(3000);
  assert.equal(membership.member('b')?.liveness, 'down');
  // Its heartbeat advancing again (a healed partition, same process) brings it back.
  membership.onMessage('x', { type: gossipAck2, entries: [entry('b', 1, 1)] });
  assert.equal(membership.member('b')?.liveness, 'up');
});

test('failure detector: a left node is no confirmer, and stale confirmations do not count', async () => {
  const { membership, clock } = makeMembership('a');
  membership.start();
  const feed = (...entries: ReturnType<typeof entry>[]): void => membership.onMessage('x', { type: gossipAck2, entries });
  feed(entry('b', 1, 0), entry('c', 1, 0), entry('gone', 1, 0, { status: 'left', suspects: [['c', 1]] }));
  let version = 0;
  // b suspected c once and has since withdrawn it (each entry carries the current list);
  // the node that left still lists c, but a left node does not confirm.
  feed(entry('b', 1, ++version, { suspects: [['c', 1]] }));
  for (let t = 0; t < 40_000; t += 1000) {
    feed(entry('b', 1, ++version));
    await clock.advance(1000);
  }
  assert.equal(membership.member('c')?.liveness, 'suspect');
});
