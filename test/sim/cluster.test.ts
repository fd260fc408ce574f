import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../../src/core/index.ts';
import { SimCluster, type SimNode, type SimNodeContext } from '../../sim/cluster.ts';

/** A node that ticks a counter on a timer and writes to its disk: enough to see what a crash does. */
class TickNode implements SimNode {
  ticks = 0;
  stopped = false;

  constructor(readonly context: SimNodeContext) {
    const loop = (): void => {
      this.ticks++;
      context.clock.setTimer(100, loop);
    };
    context.clock.setTimer(100, loop);
  }

  stop(): void {
    this.stopped = true;
  }
}

test('sim cluster: a crash stops the node’s timers and keeps only synced disk data', async () => {
  const cluster = new SimCluster<TickNode>({ seed: 1, nodes: 3, factory: (ctx) => new TickNode(ctx) });
  await cluster.startAll();
  const n1 = cluster.node('n1') as TickNode;
  const fs = n1.context.fs;
  await fs.mkdirp('/data');
  await fs.syncDir('/');
  const file = await fs.openAppend('/data/log');
  await fs.syncDir('/data');
  await file.append(utf8('synced;'));
  await file.sync();
  await file.append(utf8('lost'));
  await cluster.run(1000);
  assert.equal(n1.ticks, 10);
  cluster.crash('n1');
  await cluster.run(1000);
  assert.equal(n1.ticks, 10, 'a crashed node runs no more timers');
  assert.equal(n1.stopped, false, 'a crash is not a graceful stop');
  assert.equal(fromUtf8(await cluster.fs('n1').readFile('/data/log')), 'synced;');
  assert.deepEqual(cluster.liveIds(), ['n2', 'n3']);
  assert.equal(cluster.generation('n1'), 1);

  const back = await cluster.restart('n1');
  assert.notEqual(back, n1);
  assert.equal(back.context.generation, 2);
  assert.equal(fromUtf8(await back.context.fs.readFile('/data/log')), 'synced;', 'the restarted node sees the surviving disk');
  await cluster.run(500);
  assert.equal(back.ticks, 5);
  assert.equal((cluster.node('n2') as TickNode).ticks, 25);
  assert.equal(cluster.faultCounts().crashes, 1);
  assert.equal(cluster.faultCounts().restarts, 1);
  cluster.shutdown();
});

test('sim cluster: graceful stop calls the node’s stop; bad ids are refused', async () => {
  const cluster = new SimCluster<TickNode>({ seed: 1, nodes: ['x', 'y'], factory: (ctx) => new TickNode(ctx) });
  await cluster.startAll();
  const x = cluster.node('x') as TickNode;
  await cluster.stop('x');
  assert.equal(x.stopped, true);
  assert.equal(cluster.isRunning('x'), false);
  assert.throws(() => cluster.crash('x'), /not running/);
  assert.throws(() => cluster.node('nope'), /No simulated node/);
  await assert.rejects(cluster.start('y'), /already running/);
  assert.throws(() => new SimCluster({ seed: 1, nodes: ['a', 'a'], factory: (ctx) => new TickNode(ctx) }), /distinct/);
  assert.deepEqual(cluster.seeds, ['sim://x', 'sim://y']);
  cluster.shutdown();
});

test('sim cluster: runUntil reports the virtual time taken, or undefined at the limit', async () => {
  const cluster = new SimCluster<TickNode>({ seed: 3, nodes: 1, factory: (ctx) => new TickNode(ctx) });
  await cluster.startAll();
  const n1 = cluster.node('n1') as TickNode;
  assert.equal(await cluster.runUntil(() => n1.ticks >= 20, 10_000), 2000);
  assert.equal(await cluster.runUntil(() => false, 1000), undefined);
  cluster.shutdown();
});
