/** What a node's config sets in its replication layer, seen on cluster nodes started in this process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, SeededRandom, silentLogger, utf8 } from '../../src/core/index.ts';
import { startCluster, replicationOptions, type ClusterRuntime } from '../../src/node/cluster.ts';
import { applyConfig, defaultConfig, validateConfig, type NodeConfig } from '../../src/node/config.ts';
import { ReplicaStore } from '../../src/replication/index.ts';
import { MemoryEngine } from '../../src/storage/memory-engine.ts';

const secret = 'wiring-test-secret-0123456789';

function config(raw: Record<string, unknown>): NodeConfig {
  return validateConfig(applyConfig({ ...defaultConfig(), host: '127.0.0.1', clusterPort: 0, clusterSecret: secret }, raw, 'test'));
}

test('replicationOptions: N per namespace over the default N, and the hint age limit', () => {
  const options = replicationOptions(config({ replicationFactor: 3, namespaceReplication: { session: 2, cache: 1 }, tombstoneGraceSeconds: 600 }));
  assert.equal(options.replication?.nFor(utf8('session:42')), 2);
  assert.equal(options.replication?.nFor(utf8('cache:x')), 1);
  assert.equal(options.replication?.nFor(utf8('user:1')), 3);
  assert.equal(options.replication?.nFor(utf8('plain')), 3);
  assert.equal(options.maxHintAgeMs, 300_000);
  // Without namespaces the ring's own lists serve as they are.
  assert.equal(replicationOptions(config({})).replication, undefined);
});

test('a started cluster node gives each namespace its N and enforces the configured hint age', async (t) => {
  const clock = new RealClock();
  const started: ClusterRuntime[] = [];
  t.after(async () => {
    for (const runtime of started.reverse()) await runtime.stop();
  });
  const start = async (name: string, seeds: string[]): Promise<ClusterRuntime> => {
    const cfg = config({ nodeId: name, seeds, namespaceReplication: { one: 1 }, tombstoneGraceSeconds: 3600, maxHintAgeSeconds: 1800 });
    const store = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: name });
    const runtime = await startCluster({
      config: cfg,
      nodeId: name,
      generation: 1,
      secret,
      store,
      frontEnds: { resp: '127.0.0.1:1', http: '127.0.0.1:2' },
      env: { clock, random: new SeededRandom(name === 'a' ? 1 : 2), log: silentLogger, fs: new MemoryFileSystem() },
    });
    started.push(runtime);
    return runtime;
  };
  const a = await start('a', []);
  const b = await start('b', [a.transport.address]);
  const deadline = Date.now() + 30_000;
  const bothInRing = (r: ClusterRuntime): boolean => ['a', 'b'].every((id) => r.claimant.ring()?.hasNode(id) === true);
  while (!(bothInRing(a) && bothInRing(b))) {
    assert.ok(Date.now() < deadline, 'the two nodes agree on a ring within 30 s');
    await clock.sleep(50);
  }
  for (const runtime of [a, b]) {
    const { coordinator, handoff } = runtime.replication;
    // N = 3 by default: both nodes of a two-node ring hold every key, unless its namespace says less.
    assert.equal(coordinator.replicas(utf8('other:k')).home.length, 2);
    assert.equal(coordinator.replicas(utf8('one:k')).home.length, 1);
    assert.equal(handoff?.maxHintAgeMs, 1_800_000);
    // The replicas view (HTTP /v1/replicas, RESP RINGKV.REPLICAS) places keys as the coordinator does.
    for (const key of ['one:k', 'other:k']) {
      const shown = runtime.view.replicasOf(utf8(key));
      assert.deepEqual(shown.replicas, [...coordinator.replicas(utf8(key)).home], key);
      assert.deepEqual(shown.sloppy, shown.replicas, `${key}: every replica is up`);
    }
  }
});
