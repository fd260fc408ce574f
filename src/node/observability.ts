/**
 * What a node reports about itself beyond request metrics: Prometheus gauges
 * read at scrape time, and the extra sections of RESP INFO.
 */
import type { Engine } from '../storage/index.ts';
import type { ClusterView } from '../replication/index.ts';
import type { RespServer } from '../api/resp/index.ts';
import { flattenStats, type NodeMetrics } from '../api/http/index.ts';
import type { ClusterRuntime } from './cluster.ts';

export type NodeMode = 'standalone' | 'cluster';

/** INFO sections the node adds to what the RESP server reports itself. */
export function infoSections(
  engine: Engine,
  view: ClusterView,
  runtime: ClusterRuntime | undefined,
  node: { mode: NodeMode; generation: number },
): Record<string, Record<string, string | number>> {
  const storage: Record<string, string | number> = {};
  for (const sample of flattenStats(engine.stats())) storage[sample.labels['stat'] ?? ''] = sample.value;
  const nodes = view.nodes();
  const ring = view.ring();
  const handoff = runtime?.replication.handoff?.stats();
  return {
    storage,
    cluster: {
      mode: node.mode,
      generation: node.generation,
      nodes: nodes.length,
      nodes_up: nodes.filter((n) => n.liveness === 'up').length,
      ring_version: ring.version,
      replication_factor: ring.replicationFactor,
      hints_queued: runtime === undefined ? 0 : runtime.hints.destinations().reduce((sum, d) => sum + runtime.hints.backlog(d).hints, 0),
      hints_expired: handoff?.expired ?? 0,
      hints_rejected: handoff?.rejected ?? 0,
    },
  };
}

export function registerGauges(metrics: NodeMetrics, engine: Engine, view: ClusterView, resp: RespServer, runtime: ClusterRuntime | undefined): void {
  metrics.addGauge('ringkv_storage_keys', 'Live keys held by the storage engine (approximate).', [], () => [{ labels: {}, value: engine.stats().approximateKeys }]);
  metrics.addGauge('ringkv_storage_stat', 'Storage engine statistics by name (see src/storage/README.md).', ['stat'], () => flattenStats(engine.stats()));
  metrics.addGauge('ringkv_resp_clients', 'Connected RESP clients.', [], () => [{ labels: {}, value: resp.stats().connectedClients }]);
  metrics.addGauge('ringkv_cluster_nodes', 'Nodes of the cluster by liveness, as this node sees them.', ['liveness'], () => {
    const counts = { up: 0, suspect: 0, down: 0 };
    for (const n of view.nodes()) counts[n.liveness]++;
    return Object.entries(counts).map(([liveness, value]) => ({ labels: { liveness }, value }));
  });
  if (runtime === undefined) return;
  metrics.addGauge('ringkv_ring_partitions_owned', 'Primary partitions per node in the current ring.', ['owner'], () =>
    view.nodes().map((n) => ({ labels: { owner: n.id }, value: n.partitions })),
  );
  metrics.addGauge('ringkv_handoff_backlog_hints', 'Hints queued for a down replica, by destination node.', ['destination'], () =>
    runtime.hints.destinations().map((destination) => ({ labels: { destination }, value: runtime.hints.backlog(destination).hints })),
  );
  metrics.addGauge('ringkv_handoff_backlog_bytes', 'Bytes of hints queued for a down replica, by destination node.', ['destination'], () =>
    runtime.hints.destinations().map((destination) => ({ labels: { destination }, value: runtime.hints.backlog(destination).bytes })),
  );
  metrics.addGauge('ringkv_handoff_stat', 'Hinted handoff counters by name (stored, refused, replayed, replayFailures, expired: dropped past the maximum hint age, rejected: refused by their owner).', ['stat'], () => {
    const stats = runtime.replication.handoff?.stats();
    if (stats === undefined) return [];
    const { backlog: _perDestination, ...counters } = stats;
    return Object.entries(counters).map(([stat, value]) => ({ labels: { stat }, value }));
  });
  metrics.addGauge('ringkv_gossip_members', 'Members known through gossip, by status.', ['status'], () => {
    const counts: Record<string, number> = { joining: 0, normal: 0, leaving: 0, left: 0 };
    for (const m of runtime.membership.members()) counts[m.status] = (counts[m.status] ?? 0) + 1;
    return Object.entries(counts).map(([status, value]) => ({ labels: { status }, value }));
  });
  metrics.addGauge('ringkv_coordinator_stat', 'Coordinator counters by name (writes coordinated and forwarded, reads, read repairs, speculative read retries, hints stored, overloaded refusals).', ['stat'], () =>
    Object.entries(runtime.replication.coordinator.stats()).map(([stat, value]) => ({ labels: { stat }, value })),
  );
  metrics.addGauge('ringkv_transport_stat', 'Inter-node transport counters by name.', ['stat'], () =>
    Object.entries(runtime.transport.stats())
      .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
      .map(([stat, value]) => ({ labels: { stat }, value })),
  );
}
