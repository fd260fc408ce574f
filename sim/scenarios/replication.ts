/**
 * `npm run sim -- --scenario replication --seeds K [--nodes 3..6] [--window=MS] [--engine=lsm] [--json]`
 *
 * Replicated nodes (coordinator, ReplicaStore, hinted handoff) under
 * partitions, message loss and duplication, crashes and restarts, with a
 * recorded client history checked against issue 5's invariants after the
 * faults stop and the cluster settles (sim/replication/run.ts describes the
 * phases and the settling procedure).
 */
import type { Scenario } from '../scenario.ts';
import { runReplication } from '../replication/run.ts';

export const scenario: Scenario = {
  name: 'replication',
  description: 'N = 3 replication with sloppy quorum, hinted handoff and read repair under crashes, partitions, loss and duplication',
  defaultNodes: 4,
  async run(seed, options) {
    const windowMs = options.extra.window === undefined ? undefined : Number(options.extra.window);
    const engine = options.extra.engine === 'lsm' ? 'lsm' : 'memory';
    const result = await runReplication({ seed, nodes: options.nodes, engine, ...(windowMs !== undefined && Number.isFinite(windowMs) ? { faultWindowMs: windowMs } : {}) });
    return {
      ok: result.ok,
      faultsInjected: result.faultsInjected,
      opsChecked: result.opsChecked,
      metrics: result.metrics,
      traceHash: result.traceHash,
      ...(result.failure === undefined ? {} : { failure: result.failure }),
    };
  },
};
