/**
 * Cluster mode: the inter-node transport, gossip membership, the ring the
 * claimant proposes through gossip, and the replicated coordinator, wired
 * over one MessageRouter. Adapters here turn membership and the gossiped ring
 * into the narrow views the coordinator (Placement, NodeLiveness) and the
 * front ends (ClusterView) need.
 */
import type { Clock, Logger, NodeId, Random } from '../core/index.ts';
import { MessageRouter, UnavailableError } from '../core/index.ts';
import type { ClusterReplication, ClusterView, LivenessListener, NodeInfo, NodeLiveness, Placement, PreferenceList, ReplicaInfo, ReplicaStore, RingInfo } from '../replication/index.ts';
import { createClusterKv } from '../replication/index.ts';
import { Membership, RingClaimant, type MemberView } from '../membership/index.ts';
import type { Ring } from '../ring/index.ts';
import { TcpTransport } from '../transport/index.ts';
import type { NodeConfig } from './config.ts';
import { slotCount } from './single-cluster.ts';

/** The ring a node waits for before it reports itself healthy. */
export function ringHolds(ring: Ring | undefined, id: NodeId): boolean {
  return ring !== undefined && ring.hasNode(id);
}

function noRing(): UnavailableError {
  return new UnavailableError('The cluster has no ring yet: the nodes are still agreeing on one (a few seconds after start); retry shortly', { answered: 0, required: 1 });
}

/** The gossiped ring as the coordinator's Placement. */
export class GossipPlacement implements Placement {
  constructor(private readonly claimant: RingClaimant) {}

  private ring(): Ring {
    const ring = this.claimant.ring();
    if (ring === undefined) throw noRing();
    return ring;
  }

  partitionOfSlot(slot: number): number {
    return this.ring().partitionOfSlot(slot);
  }

  preferenceList(partition: number): PreferenceList {
    return this.ring().preferenceList(partition);
  }

  nodes(): readonly NodeId[] {
    return this.claimant.ring()?.nodes() ?? [];
  }

  dcOf(node: NodeId): string | undefined {
    return this.claimant.ring()?.dcOf(node);
  }
}

/** Membership's failure detector as the coordinator's NodeLiveness. */
export class MembershipLiveness implements NodeLiveness {
  constructor(private readonly membership: Membership) {}

  isUp(node: NodeId): boolean {
    return node === this.membership.localId || this.membership.isUp(node);
  }

  onChange(listener: LivenessListener): () => void {
    return this.membership.onChange((event) => {
      if (event.type !== 'member') return;
      const wasUp = event.previous?.liveness === 'up';
      const isUp = event.member.liveness === 'up';
      if (wasUp !== isUp) listener(event.member.id, isUp);
    });
  }
}

/** What the front ends show: members from gossip, ownership from the ring. */
export class GossipClusterView implements ClusterView {
  readonly localId: NodeId;

  constructor(
    private readonly membership: Membership,
    private readonly claimant: RingClaimant,
    private readonly replicationFactor: number,
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
    return {
      partition,
      replicas: [...ring.preferenceList(partition).home],
      sloppy: ring.sloppyReplicas(partition, isUp).map((r) => r.node),
    };
  }
}

export interface ClusterRuntime {
  transport: TcpTransport;
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
  env: { clock: Clock; random: Random; log: Logger };
}

/** Starts transport, membership, claimant and replication; on failure, closes what it opened. */
export async function startCluster(options: ClusterStartOptions): Promise<ClusterRuntime> {
  const { config, nodeId, env } = options;
  const advertise = config.advertiseHost ?? config.host;
  const transport = await TcpTransport.listen({
    nodeId,
    clusterName: config.clusterName,
    secret: options.secret,
    host: config.host,
    port: config.clusterPort,
    clock: env.clock,
    random: env.random.fork('transport'),
    log: env.log,
  });
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
    const replication = createClusterKv({
      env: { clock: env.clock, random: env.random.fork('replication'), log: env.log },
      localId: nodeId,
      transport,
      router,
      placement: new GossipPlacement(claimant),
      liveness: new MembershipLiveness(membership),
      store: options.store,
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
      membership,
      claimant,
      replication,
      view: new GossipClusterView(membership, claimant, config.replicationFactor),
      ready: () => ringHolds(claimant.ring(), nodeId),
      async stop() {
        unsubscribe();
        claimant.stop();
        await replication.stop();
        membership.stop();
        await transport.close();
      },
    };
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw error;
  }
}
