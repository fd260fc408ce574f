import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, TimeoutError, UnavailableError, VirtualClock, utf8 } from '../../../src/core/index.ts';
import { DeadlineSet, QuorumWait, gather, quorumRule, settle, type Attempt } from '../../../src/replication/quorum.ts';
import { ManualLiveness, NamespaceReplication, StaticPlacement, replicasForN } from '../../../src/replication/placement.ts';
import { Coordinator, type CoordinatorDeps } from '../../../src/replication/coordinator.ts';

const home = ['a', 'b', 'c'];
const dcs: Record<string, string> = { a: 'east', b: 'east', c: 'west', d: 'west', e: 'east' };
const dcOf = (n: string): string | undefined => dcs[n];

test('quorumRule: named levels over N = 3 and N = 5', () => {
  assert.equal(quorumRule('one', home, 'east', dcOf).required, 1);
  assert.equal(quorumRule('quorum', home, 'east', dcOf).required, 2);
  assert.equal(quorumRule('all', home, 'east', dcOf).required, 3);
  assert.equal(quorumRule(2, home, 'east', dcOf).required, 2);
  assert.equal(quorumRule('quorum', ['a', 'b', 'c', 'd', 'e'], 'east', dcOf).required, 3);
  assert.equal(quorumRule('quorum', ['a', 'b', 'c', 'd'], 'east', dcOf).required, 3);
});

test('quorumRule: local_quorum counts only replicas in the local data center', () => {
  const rule = quorumRule('local_quorum', ['a', 'b', 'c', 'd', 'e'], 'east', dcOf);
  // a, b, e are in east: a quorum of 3 is 2.
  assert.equal(rule.required, 2);
  assert.equal(rule.counts('a'), true);
  assert.equal(rule.counts('c'), false);
  const west = quorumRule('local_quorum', home, 'west', dcOf);
  assert.equal(west.required, 1);
  assert.throws(() => quorumRule('local_quorum', ['a', 'b'], 'west', dcOf), UnavailableError);
  assert.throws(() => quorumRule('local_quorum', home, undefined, dcOf), /does not know its data center/);
});

test('quorumRule: impossible numbers are refused with the key N in the message', () => {
  assert.throws(() => quorumRule(4, home, 'east', dcOf), (e: unknown) => e instanceof InvalidArgumentError && /N = 3/.test(e.message));
  assert.throws(() => quorumRule(0, home, 'east', dcOf), InvalidArgumentError);
  assert.throws(() => quorumRule(1.5, home, 'east', dcOf), InvalidArgumentError);
});

function later<T>(clock: VirtualClock, ms: number, value: T | Error): Promise<T> {
  return new Promise((resolve, reject) => clock.setTimer(ms, () => (value instanceof Error ? reject(value) : resolve(value))));
}

test('gather: resolves at the required count without waiting for slow replicas', async () => {
  const clock = new VirtualClock();
  const attempts: Array<Attempt<string>> = [
    { owner: 'a', outcome: settle(later(clock, 5, 'A')) },
    { owner: 'b', outcome: settle(later(clock, 10, 'B')) },
    { owner: 'c', outcome: settle(later(clock, 1000, 'C')) },
  ];
  const result = gather(attempts, quorumRule('quorum', home, undefined, dcOf), clock, 500, 'read "k"');
  await clock.advance(20);
  const { answers } = await result;
  assert.deepEqual(answers.map((a) => a.value), ['A', 'B']);
  assert.equal(clock.nowMs(), 20);
});

test('gather: fails fast with the counts once the quorum is impossible', async () => {
  const clock = new VirtualClock();
  const attempts: Array<Attempt<string>> = [
    { owner: 'a', outcome: settle(later(clock, 5, 'A')) },
    { owner: 'b', outcome: settle(later<string>(clock, 6, new Error('refused'))) },
    { owner: 'c', outcome: settle(later<string>(clock, 7, new Error('refused'))) },
  ];
  const result = settle(gather(attempts, quorumRule('quorum', home, undefined, dcOf), clock, 500, 'write "k"'));
  await clock.advance(10);
  const outcome = await result;
  assert.equal(outcome.ok, false);
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof UnavailableError);
  assert.equal(error.answered, 1);
  assert.equal(error.required, 2);
  assert.match(error.message, /1 of 2 required replicas answered/);
  assert.match(error.message, /refused/);
});

test('gather: times out with the counts in the message', async () => {
  const clock = new VirtualClock();
  const attempts: Array<Attempt<string>> = [
    { owner: 'a', outcome: settle(later(clock, 5, 'A')) },
    { owner: 'b', outcome: settle(later(clock, 5000, 'B')) },
    { owner: 'c', outcome: settle(later(clock, 5000, 'C')) },
  ];
  const result = settle(gather(attempts, quorumRule('all', home, undefined, dcOf), clock, 300, 'write "k"'));
  await clock.advance(400);
  const outcome = await result;
  assert.equal(outcome.ok, false);
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof TimeoutError);
  assert.match(error.message, /1 of 3 required replicas answered within 300 ms/);
});

test('gather: under local_quorum a remote answer does not count', async () => {
  const clock = new VirtualClock();
  const attempts: Array<Attempt<string>> = [
    { owner: 'c', outcome: settle(later(clock, 1, 'C')) },
    { owner: 'a', outcome: settle(later<string>(clock, 2, new Error('down'))) },
    { owner: 'b', outcome: settle(later(clock, 3, 'B')) },
  ];
  const rule = quorumRule('local_quorum', home, 'east', dcOf);
  const result = settle(gather(attempts, rule, clock, 300, 'write "k"'));
  await clock.advance(10);
  const outcome = await result;
  // east holds a and b: a quorum of 2 needs both; a failed.
  assert.equal(outcome.ok, false);
  assert.ok((outcome as { error: unknown }).error instanceof UnavailableError);
});

test('NamespaceReplication: N by the prefix before the first colon', () => {
  const repl = new NamespaceReplication(3, { session: 2, audit: 5 });
  assert.equal(repl.nFor(utf8('session:42')), 2);
  assert.equal(repl.nFor(utf8('audit:x:y')), 5);
  assert.equal(repl.nFor(utf8('other:1')), 3);
  assert.equal(repl.nFor(utf8('plain')), 3);
  assert.equal(repl.nFor(utf8(':leading')), 3);
  assert.throws(() => new NamespaceReplication(3, { bad: 0 }), /namespace "bad"/);
  assert.throws(() => new NamespaceReplication(17), InvalidArgumentError);
});

test('replicasForN: the first N distinct nodes clockwise are home, the rest fallbacks', () => {
  const list = { home: ['a', 'b', 'c'], fallbacks: ['d', 'e'] };
  assert.deepEqual(replicasForN(list, 2), { home: ['a', 'b'], fallbacks: ['c', 'd', 'e'] });
  assert.deepEqual(replicasForN(list, 4), { home: ['a', 'b', 'c', 'd'], fallbacks: ['e'] });
  assert.deepEqual(replicasForN(list, 9), { home: ['a', 'b', 'c', 'd', 'e'], fallbacks: [] });
});

test('StaticPlacement: every node appears once per list, rotating by partition', () => {
  const placement = new StaticPlacement({ nodes: ['n1', 'n2', 'n3', 'n4'], partitions: 8, n: 3 });
  for (let p = 0; p < 8; p++) {
    const { home: h, fallbacks } = placement.preferenceList(p);
    assert.equal(h.length, 3);
    assert.equal(new Set([...h, ...fallbacks]).size, 4);
    assert.equal(h[0], `n${(p % 4) + 1}`);
  }
  assert.equal(placement.partitionOfSlot(0), 0);
  assert.equal(placement.partitionOfSlot(2047), 0);
  assert.equal(placement.partitionOfSlot(2048), 1);
  assert.equal(placement.partitionOfSlot(16383), 7);
});

test('without a namespace setting the coordinator uses the ring replication factor', () => {
  const placement = new StaticPlacement({ nodes: ['n1', 'n2', 'n3', 'n4'], partitions: 8, n: 2 });
  const deps = { localId: 'n1', placement, clock: new VirtualClock(), random: {}, transport: {}, log: {}, liveness: new ManualLiveness(), backend: {}, model: {} } as unknown as CoordinatorDeps<unknown>;
  assert.equal(new Coordinator(deps, { readRepair: false }).replicas(utf8('k')).home.length, 2);
  const wider = new Coordinator(deps, { readRepair: false, replication: new NamespaceReplication(3, { one: 1 }) });
  assert.equal(wider.replicas(utf8('k')).home.length, 3);
  assert.equal(wider.replicas(utf8('one:k')).home.length, 1);
});

test('DeadlineSet expires each item at its deadline on one timer, and never a deleted one', async () => {
  const clock = new VirtualClock();
  const deadlines = new DeadlineSet(clock);
  const expired: string[] = [];
  const item = (name: string, deadlineMs: number) => ({ deadlineMs, deadlineSlot: -1, expire: () => expired.push(`${name}@${clock.nowMs()}`) });
  const a = item('a', 30);
  const b = item('b', 10);
  const c = item('c', 20);
  deadlines.add(a);
  deadlines.add(b);
  deadlines.add(c);
  deadlines.delete(c);
  await clock.advance(9);
  assert.deepEqual(expired, []);
  await clock.advance(1);
  assert.deepEqual(expired, ['b@10']);
  // Added while the timer waits for a later one: it still fires on time.
  deadlines.add(item('d', 15));
  await clock.advance(25);
  assert.deepEqual(expired, ['b@10', 'd@15', 'a@30']);
  assert.equal(deadlines.size, 0);
});

test('DeadlineSet: deleting any item, twice, or from another set leaves the others to expire once each', async () => {
  const clock = new VirtualClock();
  const deadlines = new DeadlineSet(clock);
  const other = new DeadlineSet(clock);
  const expired: string[] = [];
  const items = Array.from({ length: 8 }, (_, i) => ({ deadlineMs: 10 + (i % 3), deadlineSlot: -1, expire: () => expired.push(`i${i}`) }));
  for (const it of items) deadlines.add(it);
  // An item in one set is not added to a second, and deleting it there does nothing.
  other.add(items[0] as (typeof items)[number]);
  other.delete(items[1] as (typeof items)[number]);
  for (const i of [0, 7, 3]) {
    deadlines.delete(items[i] as (typeof items)[number]);
    deadlines.delete(items[i] as (typeof items)[number]);
  }
  assert.equal(deadlines.size, 5);
  assert.equal(other.size, 0);
  // A deleted item can be added again.
  deadlines.add(items[3] as (typeof items)[number]);
  await clock.advance(20);
  assert.deepEqual([...expired].sort(), ['i1', 'i2', 'i3', 'i4', 'i5', 'i6']);
  assert.equal(deadlines.size, 0);
  for (const it of items) assert.equal(it.deadlineSlot, -1);
});

test('DeadlineSet: an expiry that adds and deletes items leaves a consistent set', async () => {
  const clock = new VirtualClock();
  const deadlines = new DeadlineSet(clock);
  const expired: string[] = [];
  const later = { deadlineMs: 50, deadlineSlot: -1, expire: () => expired.push('later') };
  const victim = { deadlineMs: 40, deadlineSlot: -1, expire: () => expired.push('victim') };
  const first = {
    deadlineMs: 10,
    deadlineSlot: -1,
    expire: () => {
      expired.push('first');
      deadlines.delete(victim);
      deadlines.add({ deadlineMs: 15, deadlineSlot: -1, expire: () => expired.push('added') });
    },
  };
  deadlines.add(later);
  deadlines.add(victim);
  deadlines.add(first);
  await clock.advance(60);
  assert.deepEqual(expired, ['first', 'added', 'later']);
  assert.equal(deadlines.size, 0);
});

test('a QuorumWait on a DeadlineSet times out at its deadline and leaves the set once settled', async () => {
  const clock = new VirtualClock();
  const deadlines = new DeadlineSet(clock);
  const rule = quorumRule(2, ['a', 'b', 'c'], undefined, () => undefined);
  const done = new QuorumWait<true>(rule, 3, clock, 100, 'put k', deadlines);
  done.ack('a');
  done.ack('b');
  await done.promise;
  assert.equal(deadlines.size, 0);
  const slow = new QuorumWait<true>(rule, 3, clock, 100, 'put k', deadlines);
  slow.ack('a');
  let failure: unknown;
  slow.promise.catch((error: unknown) => (failure = error));
  await clock.advance(99);
  assert.equal(failure, undefined);
  await clock.advance(1);
  const error = failure as unknown;
  assert.ok(error instanceof TimeoutError && /1 of 2 required replicas answered within 100 ms/.test(error.message), String(error));
});
