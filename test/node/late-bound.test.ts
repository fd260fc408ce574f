/** The node's late-bound KvApi passes the front ends' synchronous attempts through, and says wait before its target exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, VirtualClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { defaultConfig } from '../../src/node/config.ts';
import { LateKv } from '../../src/node/late-bound.ts';
import { openNodeEngine } from '../../src/node/storage.ts';
import { LocalKv, ReplicaStore, durableLater, durableNow, wouldWait } from '../../src/replication/index.ts';

test('LateKv: winnerNow/putNow wait before the target exists and pass through after', async () => {
  const clock = new VirtualClock();
  const engine = await openNodeEngine({ ...defaultConfig(), dataDir: '/data', walSync: 'none' }, { fs: new MemoryFileSystem(), clock, log: silentLogger });
  const late = new LateKv();
  assert.equal(late.winnerNow(utf8('k')), wouldWait);
  assert.equal(late.putNow(utf8('k'), utf8('v')), wouldWait);
  await assert.rejects(late.get(utf8('k')), /still starting/);

  late.target = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock });
  // A plain SET is decided at once: the answer is a durability promise, or durableNow when nothing is left to await.
  for (const value of ['v0', 'v1']) {
    const started = late.putNow(utf8('k'), utf8(value));
    assert.notEqual(started, wouldWait);
    if (started !== durableNow && started !== wouldWait) await started;
  }
  const winner = late.winnerNow(utf8('k'));
  assert.ok(winner !== wouldWait && winner !== undefined && winner.kind === 'value');
  assert.equal(Buffer.from(winner.value).toString(), 'v1');
  assert.equal(late.winnerNow(utf8('absent')), undefined);
  await engine.close();
});

test('LateKv: putNowThen waits before the target exists, then tells the listener once the write is durable', async () => {
  const clock = new VirtualClock();
  const engine = await openNodeEngine({ ...defaultConfig(), dataDir: '/data', walSync: 'always' }, { fs: new MemoryFileSystem(), clock, log: silentLogger });
  const settled: Array<[number, boolean]> = [];
  const listener = { writeSettled: (token: number, failed: boolean): void => void settled.push([token, failed]) };
  const late = new LateKv();
  assert.equal(late.putNowThen(utf8('k'), utf8('v0'), undefined, listener, 1), wouldWait);

  late.target = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId: 'n1' }), clock });
  assert.equal(late.putNowThen(utf8('k'), utf8('v1'), undefined, listener, 7), durableLater);
  // Under sync always the write settles after the group commit's fdatasync, never inside the call.
  assert.deepEqual(settled, []);
  for (let i = 0; i < 100 && settled.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(settled, [[7, false]]);
  const winner = late.winnerNow(utf8('k'));
  assert.ok(winner !== wouldWait && winner !== undefined && winner.kind === 'value');
  assert.equal(Buffer.from(winner.value).toString(), 'v1');
  await engine.close();
});
