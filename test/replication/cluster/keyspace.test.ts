import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeId, WireMessage } from '../../../src/core/index.ts';
import { UnavailableError } from '../../../src/core/index.ts';
import { KeyspaceOps, type KeyspaceDeps } from '../../../src/replication/keyspace.ts';
import type { Placement } from '../../../src/replication/placement.ts';

/** One partition whose home is the first `n` of `nodes`. */
function placementOf(nodes: readonly NodeId[], n: number): Placement {
  return {
    nodes: () => nodes,
    partitionOfSlot: () => 0,
    preferenceList: () => ({ home: nodes.slice(0, n), fallbacks: nodes.slice(n) }),
    dcOf: () => undefined,
  };
}

function keyspace(nodes: readonly NodeId[], counts: ReadonlyMap<NodeId, number>): KeyspaceOps {
  const deps: KeyspaceDeps = {
    localId: 'n1',
    placement: placementOf(nodes, 3),
    liveness: { isUp: () => true, onChange: () => () => undefined },
    backend: { scan: () => Promise.resolve({ entries: [], done: true }), count: () => Promise.resolve(counts.get('n1') ?? 0) },
    replication: undefined,
    timeoutMs: 1000,
    request: (node: NodeId): Promise<WireMessage> => {
      const count = counts.get(node);
      return count === undefined ? Promise.reject(new UnavailableError(`${node} is down`, { answered: 0, required: 1 })) : Promise.resolve({ type: 'kv.count.reply', count });
    },
    flushLocal: () => Promise.resolve(),
  };
  return new KeyspaceOps(deps);
}

test("approximateCount before there is a ring answers with this node's own count instead of failing", async () => {
  // A client's ready check sends INFO (keyspace section) as soon as it connects, ring or not.
  assert.equal(await keyspace([], new Map([['n1', 42]])).approximateCount(), 42);
});

test('approximateCount divides the summed counts by N and scales up for nodes that did not answer', async () => {
  const counts = new Map<NodeId, number>([['n1', 30], ['n2', 30], ['n3', 30]]);
  assert.equal(await keyspace(['n1', 'n2', 'n3'], counts).approximateCount(), 30);
  // n4 does not answer: three answers out of four nodes stand for all four.
  assert.equal(await keyspace(['n1', 'n2', 'n3', 'n4'], counts).approximateCount(), 40);
});

test('approximateCount fails with Unavailable when no node of the ring answers', async () => {
  await assert.rejects(keyspace(['n2', 'n3'], new Map()).approximateCount(), (error: unknown) => error instanceof UnavailableError && /0 of 2 nodes answered/.test(error.message));
});
