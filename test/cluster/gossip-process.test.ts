/**
 * Gossip and failure detection between real processes: three nodes on
 * 127.0.0.1 form a cluster; one is killed with SIGKILL and both survivors see
 * it down (down needs a second node's confirmation); it is restarted on the
 * same data directory and address, and both see it up again (new generation).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nodePath from 'node:path';
import { freePortsIn, killIfRunning, startNode, tempDir, waitUntil as waitFor, type RunningNode } from '../node/process-helpers.ts';

const secret = { RINGKV_CLUSTER_SECRET: 'gossip-test-secret-0123456789abcdef' };
/** Bounds for a loaded 2-core machine: formation, phi-accrual suspicion plus confirmation, and rejoin. */
const waitMs = 45_000;
const waitUntil = (what: string, check: () => Promise<boolean>): Promise<void> => waitFor(what, check, waitMs);

interface ClusterNode {
  id: string;
  liveness: 'up' | 'suspect' | 'down';
}

async function livenessSeenBy(node: RunningNode): Promise<Map<string, ClusterNode['liveness']>> {
  const body = (await (await fetch(`${node.http}/v1/cluster`)).json()) as { nodes: ClusterNode[] };
  return new Map(body.nodes.map((n) => [n.id, n.liveness]));
}

describe('gossip between three node processes', () => {
  const dir = tempDir('gossip');
  const nodes: RunningNode[] = [];
  let ports: number[] = [];
  const args = (i: number): string[] => [
    '--node-id', `g${i + 1}`,
    '--cluster-port', String(ports[i]),
    ...(i > 0 ? ['--seeds', `127.0.0.1:${ports[0]}`] : []),
  ];

  before(async () => {
    ports = await freePortsIn(26000, 3000, 3);
    // Each node is recorded as it starts, so that after() stops it even if another one fails to start.
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        nodes[i] = await startNode(nodePath.join(dir.path, `g${i + 1}`), args(i), secret);
      }),
    );
  });
  after(() => {
    for (const n of nodes) killIfRunning(n);
    dir.remove();
  });

  test('all three see each other up, a SIGKILLed node is seen down by the other two, and up again after restart', async () => {
    await waitUntil('every node to see three live members', async () => {
      const views = await Promise.all(nodes.map(livenessSeenBy));
      return views.every((v) => v.size === 3 && [...v.values()].every((l) => l === 'up'));
    });

    await (nodes[2] as RunningNode).kill9();
    const survivors = nodes.slice(0, 2);
    await waitUntil('both survivors to mark g3 down', async () => {
      const views = await Promise.all(survivors.map(livenessSeenBy));
      return views.every((v) => v.get('g3') === 'down');
    });
    // Down is temporary: the ring still lists g3 as an owner.
    const ring = (await (await fetch(`${survivors[0]?.http}/v1/ring`)).json()) as { partitionsByNode: Record<string, number> };
    assert.ok((ring.partitionsByNode.g3 ?? 0) > 0, 'a down node keeps its partitions');

    nodes[2] = await startNode(nodePath.join(dir.path, 'g3'), args(2), secret);
    await waitUntil('both survivors to see g3 up again', async () => {
      const views = await Promise.all(survivors.map(livenessSeenBy));
      return views.every((v) => v.get('g3') === 'up');
    });
    const restartedView = await livenessSeenBy(nodes[2] as RunningNode);
    await waitUntil('the restarted node to see its peers up', async () => {
      const v = await livenessSeenBy(nodes[2] as RunningNode);
      return v.get('g1') === 'up' && v.get('g2') === 'up';
    });
    assert.ok(restartedView.has('g1'));
  });
});
