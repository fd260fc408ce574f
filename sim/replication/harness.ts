/**
 * Replicated nodes on the simulator (sim/cluster.ts): each node is a
 * ReplicaStore over a MemoryEngine, a hint queue, a coordinator and hinted
 * handoff, wired with createClusterKv exactly as a real node would be.
 *
 * Durability model: the engine of a node survives its crashes whole, as an
 * engine with WAL sync "always" does (every acknowledged write is durable);
 * hints are kept the same way. NodeLiveness is an oracle the harness sets when it
 * crashes or restarts a node (a perfect failure detector); partitions are not
 * reported, so the coordinator meets timeouts as it would with a lagging one.
 */
import type { NodeId } from '../../src/core/index.ts';
import { MemoryEngine, openLsm, type Engine } from '../../src/storage/index.ts';
import { ReplicaStore } from '../../src/replication/replica-store.ts';
import { createClusterKv, type ClusterKv } from '../../src/replication/cluster-kv.ts';
import type { Coordinator, CoordinatorOptions } from '../../src/replication/coordinator.ts';
import type { HandoffOptions, HintedHandoff } from '../../src/replication/handoff.ts';
import { HintStore } from '../../src/replication/hint-store.ts';
import type { StoredObject } from '../../src/replication/object.ts';
import { ManualLiveness, NamespaceReplication, StaticPlacement, type NodeLiveness, type Placement } from '../../src/replication/placement.ts';
import { SimCluster, type SimNode } from '../cluster.ts';
import type { NetworkFaults } from '../network.ts';

export interface ReplicationNode extends SimNode {
  readonly id: NodeId;
  readonly kv: ClusterKv;
  readonly coordinator: Coordinator<StoredObject>;
  readonly handoff: HintedHandoff | undefined;
  readonly store: ReplicaStore;
}

/** One node instance's view of the liveness oracle; a crash disconnects it, as the process is gone. */
class LivenessView implements NodeLiveness {
  private readonly subscriptions = new Set<() => void>();
  private dead = false;

  constructor(private readonly oracle: ManualLiveness) {}

  isUp(node: NodeId): boolean {
    return this.oracle.isUp(node);
  }

  onChange(listener: (node: NodeId, up: boolean) => void): () => void {
    if (this.dead) return () => {};
    const unsubscribe = this.oracle.onChange(listener);
    this.subscriptions.add(unsubscribe);
    return () => {
      unsubscribe();
      this.subscriptions.delete(unsubscribe);
    };
  }

  kill(): void {
    this.dead = true;
    for (const unsubscribe of this.subscriptions) unsubscribe();
    this.subscriptions.clear();
  }
}

export interface ReplicationClusterOptions {
  seed: number;
  nodes: number;
  /** Ring partitions of the static placement (runs of slots). */
  partitions?: number;
  /** Replication factor. */
  n?: number;
  faults?: Partial<NetworkFaults>;
  coordinator?: CoordinatorOptions;
  handoff?: HandoffOptions;
  /** Placement over the node ids (default: StaticPlacement). */
  placement?: (ids: readonly NodeId[]) => Placement;
  /**
   * 'memory' (default): a MemoryEngine that survives crashes whole. 'lsm': the
   * LSM engine with WAL sync "always" on the node's crash-modelling file system.
   */
  engine?: 'memory' | 'lsm';
  /** false: no hint queues, so no sloppy quorum. */
  hints?: boolean;
  /** The replica stores' object cache budget (ReplicaStoreOptions.objectCacheBytes; 0: none, as nodes run by default). */
  objectCacheBytes?: number;
}

export class ReplicationCluster {
  readonly sim: SimCluster<ReplicationNode>;
  readonly liveness = new ManualLiveness();
  readonly placement: Placement;
  readonly ids: readonly NodeId[];
  private readonly engines = new Map<NodeId, Engine>();
  private readonly views = new Map<NodeId, LivenessView>();

  constructor(readonly options: ReplicationClusterOptions) {
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    this.ids = ids;
    this.placement = options.placement?.(ids) ?? new StaticPlacement({ nodes: ids, partitions: options.partitions ?? 16, n: options.n ?? 3 });
    const n = Math.min(options.n ?? 3, ids.length);
    this.sim = new SimCluster<ReplicationNode>({
      seed: options.seed,
      nodes: ids,
      ...(options.faults ? { faults: options.faults } : {}),
      factory: async (ctx) => {
        for (const other of ids) ctx.transport.setAddress(other, `sim://${other}`);
        let engine: Engine | undefined = options.engine === 'lsm' ? undefined : this.engines.get(ctx.id);
        if (engine === undefined) {
          engine = options.engine === 'lsm' ? await openLsm('/data', { sync: 'always' }, { fs: ctx.fs, clock: ctx.clock, log: ctx.log }) : new MemoryEngine();
          this.engines.set(ctx.id, engine);
        }
        const queue = options.hints === false ? undefined : await HintStore.open(ctx.fs, '/hints', { log: ctx.log });
        const store = new ReplicaStore({
          engine,
          clock: ctx.clock,
          nodeId: ctx.id,
          ...(options.objectCacheBytes === undefined ? {} : { objectCacheBytes: options.objectCacheBytes }),
        });
        const view = new LivenessView(this.liveness);
        this.views.set(ctx.id, view);
        const replication = createClusterKv({
          env: { clock: ctx.clock, random: ctx.random, log: ctx.log },
          localId: ctx.id,
          transport: ctx.transport,
          router: ctx.router,
          placement: this.placement,
          liveness: view,
          store,
          ...(queue === undefined ? {} : { hints: queue }),
          options: { replication: new NamespaceReplication(n), ...options.coordinator, ...options.handoff },
        });
        return {
          id: ctx.id,
          kv: replication.kv,
          coordinator: replication.coordinator,
          handoff: replication.handoff,
          store,
          stop: () => replication.stop(),
        };
      },
    });
  }

  async start(): Promise<void> {
    await this.sim.startAll();
  }

  node(id: NodeId): ReplicationNode {
    const node = this.sim.node(id);
    if (node === undefined) throw new Error(`node ${id} is not running`);
    return node;
  }

  /**
   * Power loss on `id` (or, with `resetConnections`, its process killed: peers
   * see their requests to it fail at once); the failure detector notices at
   * once unless `unnoticed`.
   */
  crash(id: NodeId, options: { unnoticed?: boolean; resetConnections?: boolean } = {}): void {
    this.views.get(id)?.kill();
    this.sim.crash(id, { tornWrites: true, resetConnections: options.resetConnections === true });
    if (!options.unnoticed) this.liveness.set(id, false);
  }

  async restart(id: NodeId): Promise<ReplicationNode> {
    const node = await this.sim.restart(id);
    this.liveness.set(id, true);
    return node;
  }

  /** The engine of `id`, running or not (it survives crashes). */
  engine(id: NodeId): Engine {
    const engine = this.engines.get(id);
    if (engine === undefined) throw new Error(`node ${id} has no engine`);
    return engine;
  }

  /** Hints waiting across running nodes. */
  pendingHints(): number {
    let total = 0;
    for (const [, node] of this.sim.liveNodes()) total += node.handoff?.pendingHints() ?? 0;
    return total;
  }

  /** Runs until `promise` settles (bounded by `limitMs` of virtual time). */
  async settle<T>(promise: Promise<T>, limitMs = 60_000): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    tracked.catch(() => {});
    await this.sim.clock.runUntil(() => done, limitMs);
    if (!done) throw new Error(`operation still pending after ${limitMs} ms of virtual time`);
    return tracked;
  }

  shutdown(): void {
    this.sim.shutdown();
  }
}
