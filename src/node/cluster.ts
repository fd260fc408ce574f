/**
 * Cluster mode: the inter-node transport, gossip membership, the ring the
 * claimant proposes through gossip, and the replicated coordinator, wired
 * over one MessageRouter. The coordinator sees the gossiped ring and
 * membership through src/replication's adapters; the front ends see them
 * through GossipClusterView.
 */
import type { Clock, FileSystem, Logger, NodeId, Random } from '../core/index.ts';
import { MessageRouter, UnavailableError, joinPath } from '../core/index.ts';
import type { ClusterKvParts, ClusterReplication, ClusterView, CoordinatorProbe, NodeInfo, ReplicaInfo, ReplicaStore, RingInfo } from '../replication/index.ts';
import { HintStore, MembershipLiveness, NamespaceReplication, RingPlacement, createClusterKv, replicasForN, type RingView } from '../replication/index.ts';
import { Membership, RingClaimant, type MemberView } from '../membership/index.ts';
import type { Ring } from '../ring/index.ts';
import { TcpTransport } from '../transport/index.ts';
import { maxHintAgeMsOf, type NodeConfig } from './config.ts';
import { slotCount } from './single-cluster.ts';

/** The ring a node waits for before it reports itself healthy. */
export function ringHolds(ring: Ring | undefined, id: NodeId): boolean {
  return ring !== undefined && ring.hasNode(id);
}

function noRing(): UnavailableError {
  return new UnavailableError('The cluster has no ring yet: the nodes are still agreeing on one (a few seconds after start); retry shortly', { answered: 0, required: 1 });
}

/** What the front ends show: members from gossip, ownership from the ring. */
export class GossipClusterView implements ClusterView {
  readonly localId: NodeId;

  constructor(
    private readonly membership: Membership,
    private readonly claimant: RingClaimant,
    private readonly replicationFactor: number,
    /** N per namespace, as the coordinator applies it (replicationOptions); absent: the ring's N for every key. */
    private readonly replication?: NamespaceReplication,
  ) {
    this.localId = membership.localId;
  }

  nodes(): NodeInfo[] {
    const ring = this.claimant.ring();
    const owned = new Map<NodeId, number>();
    if (ring !== undefined) {
      for (let p = 0; p < ring.partitionCount(); p++) {
        const owner = ring.ownerOf(p);
        if (owner !== undefined) owned.set(owner, (owned.get(owner) ?? 0) + 1);
      }
    }
    return this.membership
      .members()
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m: MemberView) => ({
        id: m.id,
        address: m.address,
        respAddress: m.addresses['resp'] ?? null,
        httpAddress: m.addresses['http'] ?? null,
        dc: m.dc,
        rack: m.rack,
        status: m.status,
        liveness: m.self ? 'up' : m.liveness,
        partitions: owned.get(m.id) ?? 0,
      }));
  }

  ring(): RingInfo {
    const ring = this.claimant.ring();
    if (ring === undefined) {
      return { strategy: 'balanced', version: '0', partitionCount: slotCount, replicationFactor: this.replicationFactor, ranges: [] };
    }
    return {
      strategy: ring.strategy,
      version: ring.version,
      partitionCount: ring.partitionCount(),
      replicationFactor: ring.replicationFactor(),
      ranges: ring.ranges().map((r) => ({ start: r.start, end: r.end, replicas: [...r.replicas] })),
    };
  }

  replicasOf(key: Uint8Array): ReplicaInfo {
    const ring = this.claimant.ring();
    if (ring === undefined) throw noRing();
    const partition = ring.partitionOf(key);
    const isUp = (node: NodeId): boolean => node === this.localId || this.membership.isUp(node);
    const ringList = ring.preferenceList(partition);
    const list = this.replication === undefined ? ringList : replicasForN(ringList, this.replication.nFor(key));
    return {
      partition,
      replicas: [...list.home],
      sloppy: ring.sloppyReplicas(partition, isUp, list).map((r) => r.node),
    };
  }
}

/**
 * Placement before the first ring arrives: no nodes hold data yet, and a
 * request for a key's replicas is a retryable UnavailableError.
 */
const noRingYet: RingView = {
  partitionOfSlot: () => {
    throw noRing();
  },
  preferenceList: () => {
    throw noRing();
  },
  nodes: () => [],
  dcOf: () => undefined,
};

/** Hints for down replicas live beside the engine's files: `<data>/hints`. */
export const hintsDirName = 'hints';

export interface ClusterRuntime {
  transport: TcpTransport;
  hints: HintStore;
  membership: Membership;
  claimant: RingClaimant;
  replication: ClusterReplication;
  view: GossipClusterView;
  /** True once the gossiped ring includes this node (requests can be served). */
  ready(): boolean;
  stop(): Promise<void>;
}

export interface ClusterStartOptions {
  config: NodeConfig;
  nodeId: NodeId;
  generation: number;
  secret: string;
  store: ReplicaStore;
  /** Addresses of this node's front ends, gossiped so peers can show and redirect to them. */
  frontEnds: { resp: string; http: string };
  env: { clock: Clock; random: Random; log: Logger; fs: FileSystem };
  /** The coordinator's timings go here (tail diagnostics); absent: not measured. */
  probe?: CoordinatorProbe;
}

/** The replication options a node's config sets (N per namespace, the hint age limit). */
export function replicationOptions(config: NodeConfig, probe?: CoordinatorProbe): NonNullable<ClusterKvParts['options']> {
  // Without namespaces the ring's own lists already have N = replicationFactor;
  // a NamespaceReplication would only re-slice them on every request.
  const namespaced = Object.keys(config.namespaceReplication).length > 0;
  return {
    ...(namespaced ? { replication: new NamespaceReplication(config.replicationFactor, config.namespaceReplication) } : {}),
    maxHintAgeMs: maxHintAgeMsOf(config),
    ...(probe === undefined ? {} : { probe }),
  };
}

/** Starts transport, membership, claimant and replication; on failure, closes what it opened. */
export async function startCluster(options: ClusterStartOptions): Promise<ClusterRuntime> {
  const { config, nodeId, env } = options;
  const advertise = config.advertiseHost ?? config.host;
  const hints = await HintStore.open(env.fs, joinPath(config.dataDir, hintsDirName), { log: env.log.child({ component: 'hints' }) });
  let transport: TcpTransport;
  try {
    transport = await TcpTransport.listen({
      nodeId,
      clusterName: config.clusterName,
      secret: options.secret,
      host: config.host,
      port: config.clusterPort,
      clock: env.clock,
      random: env.random.fork('transport'),
      log: env.log,
    });
  } catch (error) {
    await hints.close();
    throw error;
  }
  try {
    const port = Number(transport.address.slice(transport.address.lastIndexOf(':') + 1));
    const router = new MessageRouter();
    transport.setHandler(router);
    const membership = new Membership({
      clock: env.clock,
      random: env.random.fork('membership'),
      transport,
      log: env.log,
      generation: options.generation,
      address: `${advertise}:${port}`,
      addresses: { resp: options.frontEnds.resp, http: options.frontEnds.http },
      dc: config.dc,
      rack: config.rack,
      seeds: config.seeds,
    });
    router.register('gossip', membership);
    const claimant = new RingClaimant({ membership, clock: env.clock, log: env.log, ring: { replication: { n: config.replicationFactor } } });
    // One instance for the coordinator and the replicas view, so both place a key alike.
    const replicationSettings = replicationOptions(config, options.probe);
    const replication = createClusterKv({
      env: { clock: env.clock, random: env.random.fork('replication'), log: env.log },
      localId: nodeId,
      transport,
      router,
      placement: new RingPlacement(() => claimant.ring() ?? noRingYet),
      liveness: new MembershipLiveness(membership),
      store: options.store,
      hints,
      options: replicationSettings,
    });
    // A node serves as soon as the ring includes it; there is no data streaming for joins yet,
    // so 'normal' is reached without a transfer (documented in src/node/README.md).
    const promote = (): void => {
      if (membership.member(nodeId)?.status === 'joining' && ringHolds(claimant.ring(), nodeId)) {
        membership.setStatus('normal');
        env.log.info('joined the ring', { ringVersion: claimant.ring()?.version });
      }
    };
    const unsubscribe = membership.onChange(promote);
    membership.start();
    claimant.start();
    return {
      transport,
      hints,
      membership,
      claimant,
      replication,
      view: new GossipClusterView(membership, claimant, config.replicationFactor, replicationSettings.replication),
      ready: () => ringHolds(claimant.ring(), nodeId),
      async stop() {
        unsubscribe();
        claimant.stop();
        await replication.stop();
        membership.stop();
        await transport.close();
        await hints.close();
      },
    };
  } catch (error) {
    await transport.close().catch(() => undefined);
    await hints.close().catch(() => undefined);
    throw error;
  }
}
