/**
 * The ring: which partition a key falls in, which nodes hold each partition,
 * and how membership changes move partitions. Immutable: every change returns
 * a new Ring with the next epoch. Pure and deterministic (no I/O, no clock).
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError, type NodeId } from '../core/index.ts';
import { claimForJoin, claimForLeave, freshLayout, rackIds, type ClaimContext } from './claim-balanced.ts';
import { defaultPartitionCount, defaultReplicationFactor, defaultTokensPerNode, redisSlotCount, ringStateFormat } from './constants.ts';
import { keySlot } from './keyspace.ts';
import { checkFits, checkPartitionCount, checkTokensPerNode, randomLayout, slotWidth, type Layout, type Strategy } from './layout.ts';
import { computePreferenceLists, type PreferenceList } from './placement.ts';
import { parseRingState, type RingState } from './state.ts';
import { tokenAt } from './tokens.ts';
import { canonicalNodes, canonicalReplication, compareIds, replicationToPlain, show, totalReplicas, type CanonicalReplication, type NodeDescriptor, type Replication } from './topology.ts';

export type { Strategy } from './layout.ts';
export type { RingState } from './state.ts';

export interface RingOptions {
  /** Default 'balanced'. */
  strategy?: Strategy;
  nodes: readonly NodeDescriptor[];
  /** Default { n: 3 }. */
  replication?: Replication;
  /** Balanced only: a power of two from 1 to 16384 (default 16384, one partition per Redis slot). */
  partitionCount?: number;
  /** Random only: tokens (virtual nodes) per node, default 256. */
  tokensPerNode?: number;
}

/** A position range on the ring, inclusive at both ends; wraps past the top when first > last. */
export interface PositionRange {
  first: number;
  last: number;
}

/** A replica chosen by a sloppy quorum: a home node, or a fallback standing in for one that is down. */
export interface SloppyReplica {
  node: NodeId;
  /** The home replica this node stands in for (its writes carry a hint); null for a home node. */
  standInFor: NodeId | null;
}

export class Ring {
  readonly strategy: Strategy;
  readonly epoch: number;
  readonly tokensPerNode: number | null;
  private readonly members_: readonly NodeDescriptor[];
  private readonly ids: readonly NodeId[];
  private readonly indexOf: ReadonlyMap<NodeId, number>;
  private readonly replication_: CanonicalReplication;
  private readonly layout: Layout;
  private readonly slotShift: number;
  private lists: PreferenceList[] | undefined;
  private slotTable: Int32Array | undefined;
  private version_: string | undefined;

  private constructor(strategy: Strategy, epoch: number, nodes: readonly NodeDescriptor[], replication: CanonicalReplication, layout: Layout, tokensPerNode: number | null) {
    this.strategy = strategy;
    this.epoch = epoch;
    this.members_ = Object.freeze(nodes.map((n) => Object.freeze({ ...n })));
    this.ids = Object.freeze(nodes.map((n) => n.id));
    this.indexOf = new Map(nodes.map((n, i) => [n.id, i]));
    this.replication_ = replication;
    this.layout = layout;
    this.tokensPerNode = tokensPerNode;
    this.slotShift = strategy === 'balanced' ? Math.log2(redisSlotCount / layout.partitionCount) : 0;
  }

  /** A fresh ring for `nodes` (any order): the from-scratch layout. */
  static create(options: RingOptions): Ring {
    if (!Array.isArray(options.nodes)) throw new InvalidArgumentError(`Cannot create a ring from nodes ${show(options.nodes)}: give an array of { id, dc, rack }`);
    const strategy = options.strategy ?? 'balanced';
    const nodes = canonicalNodes(options.nodes);
    const replication = canonicalReplication(options.replication ?? { n: defaultReplicationFactor });
    if (strategy === 'balanced') {
      if (options.tokensPerNode !== undefined) throw new InvalidArgumentError('Cannot set tokensPerNode on a balanced ring: it has fixed partitions (partitionCount)');
      const q = checkPartitionCount(options.partitionCount ?? defaultPartitionCount);
      checkFits(nodes.length, q);
      return new Ring('balanced', 0, nodes, replication, { partitionCount: q, owners: freshLayout(nodes, q), tokens: null }, null);
    }
    if (strategy !== 'random') throw new InvalidArgumentError(`Cannot use ring strategy ${show(strategy)}: use "balanced" or "random"`);
    if (options.partitionCount !== undefined) throw new InvalidArgumentError('Cannot set partitionCount on a random ring: its partitions are the arcs between tokens (set tokensPerNode)');
    const t = checkTokensPerNode(options.tokensPerNode ?? defaultTokensPerNode);
    return new Ring('random', 0, nodes, replication, randomLayout(nodes, t), t);
  }

  /** Rebuilds a ring from its serialized state, checking every field (states arrive from peers). */
  static fromState(state: RingState): Ring {
    const parsed = parseRingState(state);
    return new Ring(parsed.strategy, parsed.epoch, parsed.nodes, parsed.replication, parsed.layout, parsed.tokensPerNode);
  }

  toState(): RingState {
    return {
      format: ringStateFormat,
      strategy: this.strategy,
      epoch: this.epoch,
      partitionCount: this.layout.partitionCount,
      tokensPerNode: this.tokensPerNode,
      replication: replicationToPlain(this.replication_),
      nodes: this.members_.map((n) => ({ id: n.id, dc: n.dc, rack: n.rack })),
      owners: this.strategy === 'balanced' ? Array.from(this.layout.owners) : null,
    };
  }

  /**
   * Hash of the layout (strategy, partitions, replication, nodes, owners),
   * not of the epoch: two rings with equal versions place every key alike.
   */
  get version(): string {
    if (this.version_ === undefined) {
      const { epoch: _epoch, ...content } = this.toState();
      this.version_ = createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 16);
    }
    return this.version_;
  }

  // ------------------------------------------------------------ lookups

  partitionCount(): number {
    return this.layout.partitionCount;
  }

  /**
   * The key's position: its Redis slot (0 … 16383), for both strategies. The
   * random strategy places slot s at s × 2¹⁸ on its 32-bit circle, so its
   * partitions are runs of whole slots too and storage can order every ring's
   * data by slot.
   */
  positionOf(key: Uint8Array): number {
    return keySlot(key);
  }

  /** Size of the position space: 16384 slots. */
  positionCount(): number {
    return redisSlotCount;
  }

  /** Partition holding a slot (0 … 16383; not range-checked, it is the hot path). */
  partitionAt(slot: number): number {
    if (this.layout.tokens === null) return slot >>> this.slotShift;
    const table = this.slotTable ?? this.buildSlotTable(this.layout.tokens.positions);
    return table[slot & (redisSlotCount - 1)] as number;
  }

  /** Same as partitionAt: the name the coordinator's Placement view uses. */
  partitionOfSlot(slot: number): number {
    return this.partitionAt(slot);
  }

  partitionOf(key: Uint8Array): number {
    return this.partitionAt(keySlot(key));
  }

  /**
   * Slots a partition covers, inclusive; wraps past 16383 when first > last.
   * Null for a random-strategy arc so short that no slot falls in it.
   */
  partitionRange(partition: number): PositionRange | null {
    this.checkPartition(partition);
    const tokens = this.layout.tokens;
    if (tokens === null) {
      const first = partition << this.slotShift;
      return { first, last: first + (1 << this.slotShift) - 1 };
    }
    const count = tokens.positions.length;
    if (count === 0) return { first: 0, last: redisSlotCount - 1 };
    // Slot s is in arc i when token[i−1] < s × width ≤ token[i] (circularly);
    // the arc holds a slot at all only if it holds the first one after token[i−1].
    const start = tokens.positions[partition === 0 ? count - 1 : partition - 1] as number;
    const end = tokens.positions[partition] as number;
    const first = (Math.floor(start / slotWidth) + 1) % redisSlotCount;
    const last = Math.floor(end / slotWidth);
    return this.partitionAt(first) === partition ? { first, last } : null;
  }

  /** Home replicas and fallbacks of a partition; computed for all partitions on first use. */
  preferenceList(partition: number): PreferenceList {
    const lists = this.lists ?? this.computeLists();
    const list = lists[partition];
    if (list === undefined) this.checkPartition(partition);
    return list as PreferenceList;
  }

  replicasOf(key: Uint8Array): PreferenceList {
    return this.preferenceList(this.partitionOf(key));
  }

  /** Owner (first home replica by ring position) of a partition; undefined in an empty ring. */
  ownerOf(partition: number): NodeId | undefined {
    this.checkPartition(partition);
    return this.ids[this.layout.owners[partition] as number];
  }

  /**
   * The replicas a sloppy quorum writes to now: each home replica that is up,
   * and for each one that is down the next unused fallback that is up,
   * preferring one in the same data center. Fewer than the home count when
   * too few nodes are up. Order follows the home list. `list`: the
   * partition's list cut to another N (a namespace's), default the ring's.
   */
  sloppyReplicas(partition: number, isUp: (node: NodeId) => boolean, list: PreferenceList = this.preferenceList(partition)): SloppyReplica[] {
    const { home, fallbacks } = list;
    const out: SloppyReplica[] = [];
    const used = new Set<NodeId>();
    for (const node of home) {
      if (isUp(node)) {
        out.push({ node, standInFor: null });
        continue;
      }
      const dc = this.dcOf(node);
      let pick: NodeId | undefined;
      for (const f of fallbacks) if (!used.has(f) && this.dcOf(f) === dc && isUp(f)) {
        pick = f;
        break;
      }
      if (pick === undefined) for (const f of fallbacks) if (!used.has(f) && isUp(f)) {
        pick = f;
        break;
      }
      if (pick === undefined) continue;
      used.add(pick);
      out.push({ node: pick, standInFor: node });
    }
    return out;
  }

  /** Node ids, sorted. */
  nodes(): readonly NodeId[] {
    return this.ids;
  }

  members(): readonly NodeDescriptor[] {
    return this.members_;
  }

  hasNode(id: NodeId): boolean {
    return this.indexOf.has(id);
  }

  dcOf(id: NodeId): string | undefined {
    const i = this.indexOf.get(id);
    return i === undefined ? undefined : this.members_[i]?.dc;
  }

  replication(): Replication {
    return replicationToPlain(this.replication_);
  }

  /** Home replicas per partition when every DC has enough nodes. */
  replicationFactor(): number {
    return totalReplicas(this.replication_);
  }

  /** Partitions whose owner (first position) is `id`, ascending. */
  partitionsOwnedBy(id: NodeId): number[] {
    const i = this.indexOf.get(id);
    const out: number[] = [];
    if (i === undefined) return out;
    this.layout.owners.forEach((o, p) => {
      if (o === i) out.push(p);
    });
    return out;
  }

  /** Runs of consecutive partitions with the same home replicas, in ring order (ring views). */
  ranges(): Array<{ start: number; end: number; replicas: readonly NodeId[] }> {
    const out: Array<{ start: number; end: number; replicas: readonly NodeId[] }> = [];
    for (let p = 0; p < this.layout.partitionCount; p++) {
      const replicas = this.preferenceList(p).home;
      const last = out[out.length - 1];
      if (last !== undefined && sameList(last.replicas, replicas)) last.end = p;
      else out.push({ start: p, end: p, replicas });
    }
    return out;
  }

  /**
   * Runs of consecutive slots with the same home replicas, slot 0 to 16383,
   * for either strategy: what CLUSTER SLOTS answers (first replica = master).
   */
  slotRanges(): Array<{ first: number; last: number; replicas: readonly NodeId[] }> {
    const out: Array<{ first: number; last: number; replicas: readonly NodeId[] }> = [];
    for (let slot = 0; slot < redisSlotCount; slot++) {
      const replicas = this.preferenceList(this.partitionAt(slot)).home;
      const last = out[out.length - 1];
      if (last !== undefined && sameList(last.replicas, replicas)) last.last = slot;
      else out.push({ first: slot, last: slot, replicas });
    }
    return out;
  }

  // ------------------------------------------------------------ changes

  /** Adds a node: balanced moves only the partitions the newcomer takes; random adds its tokens. */
  join(node: NodeDescriptor): Ring {
    if (this.indexOf.has(node.id)) throw new InvalidArgumentError(`Cannot join node ${node.id}: it is already in the ring`);
    return this.withMembers([...this.members_, node]);
  }

  /** Removes a node: balanced hands its partitions to the least loaded nodes. */
  leave(id: NodeId): Ring {
    if (!this.indexOf.has(id)) throw new InvalidArgumentError(`Cannot remove node ${id}: it is not in the ring (nodes: ${this.ids.join(', ') || 'none'})`);
    return this.withMembers(this.members_.filter((n) => n.id !== id));
  }

  /** Replaces a node: the new node takes exactly the old one's partitions (balanced) and nothing else moves. */
  replace(oldId: NodeId, node: NodeDescriptor): Ring {
    const oldIndex = this.indexOf.get(oldId);
    if (oldIndex === undefined) throw new InvalidArgumentError(`Cannot replace node ${oldId}: it is not in the ring`);
    if (this.indexOf.has(node.id)) throw new InvalidArgumentError(`Cannot replace ${oldId} with ${node.id}: ${node.id} is already in the ring`);
    const nodes = canonicalNodes([...this.members_.filter((n) => n.id !== oldId), node]);
    if (this.strategy === 'random') return new Ring('random', this.epoch + 1, nodes, this.replication_, randomLayout(nodes, this.tokensPerNode as number), this.tokensPerNode);
    const remap = indexRemap(this.ids, nodes);
    const newIndex = nodes.findIndex((n) => n.id === node.id);
    const owners = this.layout.owners.map((o) => (o === oldIndex ? newIndex : (remap[o] as number)));
    return new Ring('balanced', this.epoch + 1, nodes, this.replication_, { ...this.layout, owners }, null);
  }

  /**
   * Moves to the membership `nodes` (any order): leaves first, then joins,
   * each in id order, so every node that applies the same change gets the
   * same ring. A node whose dc or rack changed keeps its partitions.
   */
  withMembers(nodesIn: readonly NodeDescriptor[]): Ring {
    const target = canonicalNodes(nodesIn);
    if (this.strategy === 'random') {
      return new Ring('random', this.epoch + 1, target, this.replication_, randomLayout(target, this.tokensPerNode as number), this.tokensPerNode);
    }
    checkFits(target.length, this.layout.partitionCount);
    const targetIds = new Set(target.map((n) => n.id));
    const leavers = this.ids.filter((id) => !targetIds.has(id));
    const joiners = target.filter((n) => !this.indexOf.has(n.id));
    const window = Math.max(1, totalReplicas(this.replication_) - 1);

    // Work over the union of old and new nodes, sorted, so indexes stay fixed while claiming.
    // Both parts are validated already; the union may briefly exceed maxRingNodes, so it is only sorted.
    const union = [...target, ...this.members_.filter((n) => !targetIds.has(n.id))].sort((a, b) => compareIds(a.id, b.id));
    const unionIndex = new Map(union.map((n, i) => [n.id, i]));
    const toUnion = indexRemap(this.ids, union);
    const owners = this.layout.owners.map((o) => (o < 0 ? -1 : (toUnion[o] as number)));
    const ctx: ClaimContext = { rackOf: rackIds(union), window };
    const present = new Set(this.ids.map((id) => unionIndex.get(id) as number));
    for (const id of leavers) {
      const leaver = unionIndex.get(id) as number;
      present.delete(leaver);
      claimForLeave(owners, leaver, [...present].sort((a, b) => a - b), ctx);
    }
    for (const node of joiners) {
      const newcomer = unionIndex.get(node.id) as number;
      present.add(newcomer);
      claimForJoin(owners, newcomer, [...present].sort((a, b) => a - b), ctx);
    }
    const toTarget = indexRemap(union.map((n) => n.id), target);
    const finalOwners = owners.map((o) => (o < 0 ? -1 : (toTarget[o] as number)));
    return new Ring('balanced', this.epoch + 1, target, this.replication_, { ...this.layout, owners: finalOwners }, null);
  }

  /** Same layout with other replica counts. */
  withReplication(replication: Replication): Ring {
    return new Ring(this.strategy, this.epoch + 1, this.members_, canonicalReplication(replication), this.layout, this.tokensPerNode);
  }

  // ------------------------------------------------------------ internals

  /** Owner index per partition (ring order); for diffs and tests. */
  ownerIndexes(): Int32Array {
    return this.layout.owners;
  }

  /** Token positions of the random strategy (ascending), or null. */
  tokenPositions(): Uint32Array | null {
    return this.layout.tokens?.positions ?? null;
  }

  /** Random strategy: the partition of every slot, so a lookup is an index, not a binary search. */
  private buildSlotTable(positions: Uint32Array): Int32Array {
    const table = new Int32Array(redisSlotCount);
    for (let slot = 0; slot < redisSlotCount; slot++) table[slot] = tokenAt(positions, slot * slotWidth);
    this.slotTable = table;
    return table;
  }

  private computeLists(): PreferenceList[] {
    this.lists = computePreferenceLists(this.layout.owners, this.members_, this.replication_);
    return this.lists;
  }

  private checkPartition(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.layout.partitionCount) {
      throw new InvalidArgumentError(`Cannot look up partition ${partition}: the ring has partitions 0 to ${this.layout.partitionCount - 1}`);
    }
  }
}

/** For each id in `from`, its index in `to` (−1 when absent). */
function indexRemap(from: readonly NodeId[], to: readonly NodeDescriptor[]): Int32Array {
  const at = new Map(to.map((n, i) => [n.id, i]));
  return Int32Array.from(from, (id) => at.get(id) ?? -1);
}

function sameList(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

