import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, ProtocolError } from '../../src/core/index.ts';
import { gossipAck, gossipAck2, gossipSyn, maxEntriesPerMessage, maxMembers, ringHash, type MembershipEvent } from '../../src/membership/index.ts';
import { entry, makeMembership } from './helpers.ts';

test('membership: a syn carries a digest per known member, our address and the ring digest', async () => {
  const { membership, transport, clock } = makeMembership('a');
  membership.start();
  membership.onMessage('b', { type: gossipAck, entries: [entry('b', 1, 3)], want: [], wantRing: false });
  transport.sent.length = 0;
  await clock.advance(1100);
  const syns = transport.take(gossipSyn);
  assert.equal(syns.length, 1);
  assert.equal(syns[0]?.to, 'b');
  const syn = syns[0]?.message;
  assert.equal(syn?.address, 'addr-a');
  assert.equal(syn?.v, 1);
  assert.deepEqual(syn?.digests, [['a', 1, 1], ['b', 1, 3]]);
  assert.deepEqual(syn?.ring, { version: 0, proposer: '', hash: ringHash(null).hash });
});

test('membership: the ack holds only entries newer than the digests, and asks for the ones we lack', () => {
  const { membership, transport } = makeMembership('a');
  membership.start();
  membership.onMessage('x', { type: gossipAck, entries: [entry('b', 1, 5), entry('c', 2, 9), entry('d', 1, 1)], want: [], wantRing: false });
  transport.sent.length = 0;
  membership.onMessage('b', {
    type: gossipSyn,
    v: 1,
    address: 'addr-b',
    // b: theirs newer; c: ours newer (generation wins over version); e: unknown to us; d: not mentioned.
    digests: [['b', 1, 7], ['c', 1, 50], ['e', 1, 1], ['a', 1, 0]],
    ring: { version: 0, proposer: '', hash: ringHash(null).hash },
  });
  const acks = transport.take(gossipAck);
  assert.equal(acks.length, 1);
  const ack = acks[0]?.message;
  assert.deepEqual(ack?.want, ['b', 'e']);
  const sentIds = (ack?.entries as Array<{ id: string; generation: number; version: number }>).map((e) => `${e.id}@${e.generation}.${e.version}`).sort();
  assert.deepEqual(sentIds, ['c@2.9', 'd@1.1']);
  assert.equal(ack?.wantRing, false);
  assert.equal(ack?.ring, undefined);
});

test('membership: an ack is answered with an ack2 holding the wanted entries and the ring', () => {
  const { membership, transport } = makeMembership('a');
  membership.start();
  membership.proposeRing({ layout: [1, 2, 3] });
  membership.onMessage('b', { type: gossipAck, entries: [entry('b', 1, 2)], want: ['a', 'zzz'], wantRing: true });
  const ack2 = transport.take(gossipAck2)[0]?.message;
  assert.ok(ack2);
  assert.deepEqual((ack2.entries as Array<{ id: string }>).map((e) => e.id), ['a']);
  assert.deepEqual((ack2.ring as { data: unknown }).data, { layout: [1, 2, 3] });
  assert.equal(membership.member('b')?.heartbeat, 2);
});

test('membership: older or equal entries never replace newer ones; a new generation does', () => {
  const { membership } = makeMembership('a');
  membership.start();
  const merge = (...entries: ReturnType<typeof entry>[]): void => membership.onMessage('x', { type: gossipAck2, entries });
  merge(entry('b', 2, 10, { rack: 'r2' }));
  merge(entry('b', 2, 9, { rack: 'r9' }), entry('b', 1, 99, { rack: 'r9' }), entry('b', 2, 10, { rack: 'r9' }));
  assert.equal(membership.member('b')?.rack, 'r2');
  merge(entry('b', 3, 0, { rack: 'r3' }));
  assert.deepEqual([membership.member('b')?.generation, membership.member('b')?.heartbeat, membership.member('b')?.rack], [3, 0, 'r3']);
});

test('membership: malformed gossip is dropped with a logged reason, never thrown', () => {
  const { membership, log } = makeMembership('a');
  membership.start();
  const bad: unknown[] = [
    null,
    { id: 'b' },
    { ...entry('b', 1, 1), generation: -1 },
    { ...entry('b', 1, 1), status: 'zombie' },
    { ...entry('b', 1, 1), addresses: { resp: 'x' } },
    { ...entry('b', 1, 1), suspects: [['c']] },
    { ...entry('b', 1, 1), id: 'x'.repeat(300) },
  ];
  membership.onMessage('x', { type: gossipAck2, entries: bad });
  membership.onMessage('x', { type: gossipAck2, entries: 'nope' });
  membership.onMessage('x', { type: gossipSyn, v: 1, digests: [['b', 1]], ring: {} });
  membership.onMessage('x', { type: gossipSyn, v: 2, digests: [], ring: { version: 0, proposer: '', hash: 0 } });
  membership.onMessage('x', { type: gossipAck2, entries: [], ring: { version: 1, proposer: 'x', hash: 1, data: 'tampered' } });
  membership.onMessage('x', { type: 'gossip.unknown' });
  assert.deepEqual(membership.members().map((m) => m.id), ['a']);
  assert.equal(membership.ringState().version, 0);
  const warnings = log.records.filter((r) => r.level === 'warn').map((r) => `${r.message}: ${String(r.fields.reason)}`);
  assert.equal(warnings.length, bad.length + 4);
  assert.ok(warnings.some((w) => /another protocol version/.test(w)));
  assert.ok(warnings.some((w) => /unknown status zombie/.test(w)));
  assert.ok(warnings.some((w) => /does not match its hash/.test(w)));
});

test('membership: requests are refused with a ProtocolError', async () => {
  const { membership } = makeMembership('a');
  await assert.rejects(membership.onRequest('b', { type: 'gossip.syn' }), ProtocolError);
});

test('membership: ring states order by version, then proposer, then hash', () => {
  const { membership } = makeMembership('m');
  membership.start();
  const events: MembershipEvent[] = [];
  membership.onChange((e) => events.push(e));
  const state = (version: number, proposer: string, data: unknown) => ({ version, proposer, hash: ringHash(data).hash, data });
  const offer = (s: ReturnType<typeof state>): void => membership.onMessage('x', { type: gossipAck2, entries: [], ring: s });
  offer(state(2, 'b', 'two-b'));
  assert.equal(membership.ringState().data, 'two-b');
  offer(state(1, 'z', 'one-z'));
  offer(state(2, 'a', 'two-a'));
  assert.equal(membership.ringState().data, 'two-b');
  offer(state(2, 'c', 'two-c'));
  assert.equal(membership.ringState().data, 'two-c');
  const proposed = membership.proposeRing('three');
  assert.deepEqual([proposed.version, proposed.proposer], [3, 'm']);
  assert.deepEqual(events.map((e) => (e.type === 'ring' ? e.ring.data : e.type)), ['two-b', 'two-c', 'three']);
});

test('membership: a node that sees itself with a newer generation moves past it', () => {
  const { membership, log } = makeMembership('a', { generation: 5 });
  membership.start();
  membership.onMessage('x', { type: gossipAck2, entries: [entry('a', 7, 3)] });
  assert.equal(membership.member('a')?.generation, 8);
  membership.onMessage('x', { type: gossipAck2, entries: [entry('a', 8, 40)] });
  assert.equal(membership.member('a')?.heartbeat, 41);
  assert.ok(log.records.some((r) => r.level === 'warn' && /newer entry for this node/.test(r.message)));
});

test('membership: setStatus bumps the version and tells listeners', () => {
  const { membership } = makeMembership('a');
  membership.start();
  const events: MembershipEvent[] = [];
  membership.onChange((e) => events.push(e));
  const before = membership.member('a')?.heartbeat ?? -1;
  membership.setStatus('leaving');
  assert.equal(membership.member('a')?.status, 'leaving');
  assert.ok((membership.member('a')?.heartbeat ?? -1) > before);
  assert.equal(events.length, 1);
  const e = events[0];
  assert.ok(e?.type === 'member' && e.previous?.status === 'normal' && e.member.status === 'leaving');
});

test('membership: the table is bounded by maxMembers', () => {
  const { membership } = makeMembership('a');
  membership.start();
  for (let batch = 0; batch * maxEntriesPerMessage < maxMembers + 50; batch++) {
    const entries = Array.from({ length: maxEntriesPerMessage }, (_, i) => entry(`p${batch * maxEntriesPerMessage + i}`, 1, 1));
    membership.onMessage('x', { type: gossipAck2, entries });
  }
  assert.equal(membership.members().length, maxMembers);
  assert.ok(membership.droppedMembers() > 0);
});

test('membership: bad options are refused with a message naming the value', () => {
  assert.throws(() => makeMembership('a', { fanout: 0 }), (e: unknown) => e instanceof InvalidArgumentError && /fanout/.test(e.message));
  assert.throws(() => makeMembership('a', { generation: -2 }), /generation/);
  assert.throws(() => makeMembership('a', { address: '' }), /address/);
});

test('membership: seeds are identified, their address set, and retried until they answer', async () => {
  const { membership, transport, clock } = makeMembership('a', { seeds: ['seed-1', 'addr-a'] });
  membership.start();
  await clock.advance(3500);
  assert.equal(transport.take(gossipSyn).length, 0, 'nothing to gossip with before a seed answers');
  transport.identities.set('seed-1', 's1');
  await clock.advance(1200);
  assert.equal(transport.addresses.get('s1'), 'seed-1');
  assert.ok(transport.take(gossipSyn).some((s) => s.to === 's1'));
});
