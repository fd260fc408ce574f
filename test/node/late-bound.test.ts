/** The node's late-bound KvApi passes the front ends' synchronous attempts through, and says wait before its target exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, VirtualClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { defaultConfig } from '../../src/node/config.ts';
import { LateKv } from '../../src/node/late-bound.ts';
import { openNodeEngine } from '../../src/node/storage.ts';
import { LocalKv, ReplicaStore, durableNow, wouldWait } from '../../src/replication/index.ts';

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
