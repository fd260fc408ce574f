/**
 * Three real node processes in cluster mode (shared secret, seeds): they form
 * one ring, any node serves any key, a write survives one node being killed
 * (quorum 2 of 3, the dead replica's share queued as durable hints), and the
 * hints reach it when it comes back on the same data directory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nodePath from 'node:path';
import { Redis } from 'ioredis';
import { freePortsIn, killIfRunning, startNode, tempDir, waitUntil, type RunningNode } from './process-helpers.ts';

const secret = { RINGKV_CLUSTER_SECRET: 'test-cluster-secret-0123456789' };
/** Ring agreement waits for the claimant's warm-up (5 gossip intervals); allow for a loaded machine. */
const formationTimeoutMs = 30_000;

async function healthy(node: RunningNode): Promise<boolean> {
  const res = await fetch(`${node.http}/healthz`);
  await res.body?.cancel();
  return res.ok;
}

describe('a three-node cluster of processes', () => {
  const dir = tempDir('cluster');
  const nodes: RunningNode[] = [];
  let clusterPorts: number[] = [];
  const args = (i: number): string[] => [
    '--node-id', `n${i + 1}`,
    '--cluster-port', String(clusterPorts[i]),
    ...(i > 0 ? ['--seeds', `127.0.0.1:${clusterPorts[0]}`] : []),
  ];

  before(async () => {
    clusterPorts = await freePortsIn(29000, 3000, 3);
    // Each node is recorded as it starts, so that after() stops it even if another one fails to start.
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        nodes[i] = await startNode(nodePath.join(dir.path, `n${i + 1}`), args(i), secret);
      }),
    );
    await waitUntil('every node to be in the ring', async () => (await Promise.all(nodes.map(healthy))).every(Boolean), formationTimeoutMs);
  });
  after(() => {
    for (const n of nodes) killIfRunning(n);
    dir.remove();
  });

  test('the nodes agree on members and ring; any node serves any key', async () => {
    const views = await Promise.all(nodes.map(async (n) => (await (await fetch(`${n.http}/v1/ring`)).json()) as { version: string; replicationFactor: number; partitionsByNode: Record<string, number> }));
    assert.equal(new Set(views.map((v) => v.version)).size, 1, 'one ring version everywhere');
    assert.equal(views[0]?.replicationFactor, 3);
    assert.deepEqual(Object.keys(views[0]?.partitionsByNode ?? {}).sort(), ['n1', 'n2', 'n3']);

    const clients = nodes.map((n) => new Redis({ port: n.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 }));
    try {
      for (let i = 0; i < 30; i++) assert.equal(await clients[i % 3]?.set(`c:${i}`, `v${i}`), 'OK');
      for (let i = 0; i < 30; i++) assert.equal(await clients[(i + 1) % 3]?.get(`c:${i}`), `v${i}`);
      // N = 3 on three nodes: every node stores every key. A SET answers after W = 2, so the
      // third copy may still be on its way (or held as a hint while a connection comes up).
      const stored = async (n: RunningNode): Promise<number> => ((await (await fetch(`${n.http}/v1/node`)).json()) as { keys: number }).keys;
      await waitUntil('every node to store the 30 keys', async () => (await Promise.all(nodes.map(stored))).every((keys) => keys >= 30), 30_000);
      // The coordinator's counters are on /metrics: the 10 GETs node 2 served are among its reads.
      const text = await (await fetch(`${(nodes[1] as RunningNode).http}/metrics`)).text();
      const reads = /^ringkv_coordinator_stat\{stat="reads",[^}]*\} (\d+)$/m.exec(text);
      assert.ok(reads !== null && Number(reads[1]) >= 10, `coordinator reads on /metrics: ${reads?.[0] ?? 'missing'}`);
      assert.match(text, /^ringkv_coordinator_stat\{stat="readRetries",[^}]*\} \d+$/m);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  test('with one node killed, quorum writes succeed; its hints are delivered when it returns', async () => {
    const victim = nodes[2] as RunningNode;
    await victim.kill9();
    const writer = new Redis({ port: (nodes[0] as RunningNode).respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      for (let i = 0; i < 20; i++) assert.equal(await writer.set(`down:${i}`, `d${i}`), 'OK');
    } finally {
      writer.disconnect();
    }
    const backlog = async (): Promise<number> => {
      let total = 0;
      for (const n of nodes.slice(0, 2)) {
        const text = await (await fetch(`${n.http}/metrics`)).text();
        for (const m of text.matchAll(/^ringkv_handoff_backlog_hints\{destination="n3",[^}]*\} (\d+)$/gm)) total += Number(m[1]);
      }
      return total;
    };
    assert.ok((await backlog()) >= 20, 'writes for the dead replica are queued as hints');

    const restarted = await startNode(nodePath.join(dir.path, 'n3'), args(2), secret);
    nodes[2] = restarted;
    await waitUntil('the hints to be replayed', async () => (await backlog()) === 0, formationTimeoutMs);
    const reader = new Redis({ port: restarted.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      // Reading through n3 at R = quorum would mask a missing copy; count what n3 itself stores.
      const info = (await (await fetch(`${restarted.http}/v1/node`)).json()) as { keys: number };
      assert.ok(info.keys >= 50, `n3 stores ${info.keys} keys after hint replay`);
      assert.equal(await reader.get('down:7'), 'd7');
    } finally {
      reader.disconnect();
    }
  });
});
