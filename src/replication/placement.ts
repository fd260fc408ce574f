/**
 * The narrow views of the ring and of membership that the coordinator needs.
 * The coordinator depends on these interfaces only, so it can be tested over a
 * static layout and wired to src/ring and src/membership by small adapters.
 */
import type { NodeId } from '../core/index.ts';
import { InvalidArgumentError } from '../core/index.ts';
import type { Ring } from '../ring/index.ts';
import type { MembershipEvent, MembershipListener } from '../membership/index.ts';
import { slotCount } from './keys.ts';

/** Replicas of one partition: the first N distinct nodes clockwise, then the rest in ring order. */
export interface PreferenceList {
  /** Home replicas, preferred first. */
  readonly home: readonly NodeId[];
  /** Further distinct nodes clockwise, the stand-ins a sloppy quorum uses. */
  readonly fallbacks: readonly NodeId[];
}

/**
 * Storage orders keys by slot (keys.ts: the Redis Cluster slot, 0 … 16383), so
 * ring partitions must be runs of consecutive slots: with the default balanced
 * ring (Q = 16384) a partition is a slot; a smaller Q groups neighbouring slots.
 * A key's partition is `partitionOfSlot(slotOf(key))`.
 */
export interface Placement {
  partitionOfSlot(slot: number): number;
  preferenceList(partition: number): PreferenceList;
  /** Every node that holds data (for cluster-wide count and flush). */
  nodes(): readonly NodeId[];
  /** Data center of a node; undefined when unknown. */
  dcOf(node: NodeId): string | undefined;
}

export type LivenessListener = (node: NodeId, up: boolean) => void;

export interface NodeLiveness {
  /** Whether the failure detector currently believes `node` is up. */
  isUp(node: NodeId): boolean;
  /** Called when a node's up/down state changes; returns a function that unsubscribes. */
  onChange(listener: LivenessListener): () => void;
}

/** Default number of replicas when no namespace setting applies. */
export const defaultReplicationFactor = 3;
/** Largest replication factor a namespace may ask for. */
export const maxReplicationFactor = 16;

/**
 * N per namespace. A key's namespace is the text before its first ':' (so
 * `session:42` is in `session`); keys without ':' use `defaultN`. This keeps
 * the setting a plain map a node's config can carry, like a Riak bucket's n_val.
 */
export class NamespaceReplication {
  private readonly byNamespace: ReadonlyMap<string, number>;
  readonly defaultN: number;
  /** The smallest N of any key: the first minN home replicas hold every key of a partition. */
  readonly minN: number;

  constructor(defaultN: number = defaultReplicationFactor, byNamespace: Readonly<Record<string, number>> = {}) {
    checkN(defaultN, 'the default');
    const map = new Map<string, number>();
    for (const [ns, n] of Object.entries(byNamespace)) {
      checkN(n, `namespace "${ns}"`);
      map.set(ns, n);
    }
    this.defaultN = defaultN;
    this.byNamespace = map;
    this.minN = Math.min(defaultN, ...map.values());
  }

  nFor(key: Uint8Array): number {
    if (this.byNamespace.size === 0) return this.defaultN;
    const colon = key.indexOf(0x3a);
    if (colon <= 0) return this.defaultN;
    const ns = Buffer.from(key.buffer, key.byteOffset, colon).toString('latin1');
    return this.byNamespace.get(ns) ?? this.defaultN;
  }
}

function checkN(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > maxReplicationFactor) {
    throw new InvalidArgumentError(`Cannot use N = ${n} for ${what}: N must be an integer from 1 to ${maxReplicationFactor}`);
  }
}

/**
 * The ordered replica candidates of a key for replication factor `n`: the ring
 * gives home + fallbacks in clockwise order; the first `n` distinct nodes are
 * the key's home replicas whatever the ring's own N was.
 */
export function replicasForN(list: PreferenceList, n: number): PreferenceList {
  const ordered: NodeId[] = [];
  for (const node of [...list.home, ...list.fallbacks]) if (!ordered.includes(node)) ordered.push(node);
  return { home: ordered.slice(0, n), fallbacks: ordered.slice(n) };
}

// ---------------------------------------------------------------- static implementations

/**
 * A fixed layout for tests and the simulator: `partitions` equal runs of
 * slots, partition p's clockwise order starting at node p mod S. Every node is
 * on every preference list, so fallbacks exist.
 */
export class StaticPlacement implements Placement {
  private readonly members: readonly NodeId[];
  private readonly partitions: number;
  private readonly n: number;
  private readonly dcs: ReadonlyMap<NodeId, string>;

  constructor(options: { nodes: readonly NodeId[]; partitions: number; n?: number; dcs?: Readonly<Record<NodeId, string>> }) {
    if (options.nodes.length === 0) throw new InvalidArgumentError('A placement needs at least one node');
    if (!Number.isInteger(options.partitions) || options.partitions < 1 || options.partitions > slotCount) {
      throw new InvalidArgumentError(`Cannot use ${options.partitions} partitions: it must be an integer from 1 to ${slotCount}`);
    }
    this.members = [...options.nodes];
    this.partitions = options.partitions;
    this.n = Math.min(options.n ?? defaultReplicationFactor, this.members.length);
    this.dcs = new Map(Object.entries(options.dcs ?? {}));
  }

  partitionOfSlot(slot: number): number {
    return Math.floor((slot * this.partitions) / slotCount);
  }

  preferenceList(partition: number): PreferenceList {
    const s = this.members.length;
    const order: NodeId[] = [];
    for (let i = 0; i < s; i++) order.push(this.members[(partition + i) % s] as NodeId);
    return { home: order.slice(0, this.n), fallbacks: order.slice(this.n) };
  }

  nodes(): readonly NodeId[] {
    return this.members;
  }

  dcOf(node: NodeId): string | undefined {
    return this.dcs.get(node);
  }
}

/** Liveness set by hand (tests, the simulator's oracle of who is up). */
export class ManualLiveness implements NodeLiveness {
  private readonly down = new Set<NodeId>();
  private readonly listeners = new Set<LivenessListener>();

  isUp(node: NodeId): boolean {
    return !this.down.has(node);
  }

  set(node: NodeId, up: boolean): void {
    if (up === this.isUp(node)) return;
    if (up) this.down.delete(node);
    else this.down.add(node);
    for (const listener of [...this.listeners]) listener(node, up);
  }

  onChange(listener: LivenessListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

// ---------------------------------------------------------------- adapters to src/ring and src/membership

/** The ring methods placement reads; a `Ring` from src/ring has them all. */
export type RingView = Pick<Ring, 'partitionOfSlot' | 'preferenceList' | 'nodes' | 'dcOf'>;

/**
 * Placement over the current ring. The ring is replaced when gossip brings a
 * newer one, so each lookup asks `current()` rather than holding a ring.
 */
export class RingPlacement implements Placement {
  constructor(private readonly current: () => RingView) {}

  partitionOfSlot(slot: number): number {
    return this.current().partitionOfSlot(slot);
  }

  preferenceList(partition: number): PreferenceList {
    return this.current().preferenceList(partition);
  }

  nodes(): readonly NodeId[] {
    return this.current().nodes();
  }

  dcOf(node: NodeId): string | undefined {
    return this.current().dcOf(node);
  }
}

/** The Membership methods liveness reads (src/membership's Membership has them). */
export interface MembershipLike {
  isUp(id: NodeId): boolean;
  onChange(listener: MembershipListener): () => void;
}

/** Liveness from gossip membership: reports a node's transitions between up and not up. */
export class MembershipLiveness implements NodeLiveness {
  constructor(private readonly membership: MembershipLike) {}

  isUp(node: NodeId): boolean {
    return this.membership.isUp(node);
  }

  onChange(listener: LivenessListener): () => void {
    return this.membership.onChange((event: MembershipEvent) => {
      if (event.type !== 'member') return;
      const up = event.member.liveness === 'up';
      const wasUp = event.previous?.liveness === 'up';
      if (up !== wasUp) listener(event.member.id, up);
    });
  }
}
