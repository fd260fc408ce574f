/**
 * Preference lists: for every partition, its home replicas and the fallback
 * nodes a sloppy quorum uses, computed once per ring and then looked up.
 *
 * Walking clockwise from a partition gives the distinct physical nodes in the
 * order they first own a partition. Home replicas are picked from that walk:
 * with a plain N, each pick is the first node in walk order that adds a new
 * data center, else a new rack, else any node; with per-DC counts, each DC
 * picks its own count the same way over racks (NetworkTopologyStrategy).
 * Fallbacks are the remaining nodes in walk order.
 */
import type { NodeId } from '../core/index.ts';
import { maxFallbackNodes } from './constants.ts';
import { rackKey, type CanonicalReplication, type NodeDescriptor } from './topology.ts';

/** Replicas of one partition. */
export interface PreferenceList {
  /** Home replicas in clockwise order (the first is the partition's owner when its DC holds replicas). */
  readonly home: readonly NodeId[];
  /** Further distinct nodes clockwise, the stand-ins a sloppy quorum uses. */
  readonly fallbacks: readonly NodeId[];
}

interface Group {
  need: number;
  totalDcs: number;
  totalRacks: number;
}

const emptyList: PreferenceList = Object.freeze({ home: Object.freeze([]), fallbacks: Object.freeze([]) });

/**
 * @param owners node index (into `nodes`) owning each partition, in ring order; −1 when none.
 */
export function computePreferenceLists(owners: ArrayLike<number>, nodes: readonly NodeDescriptor[], replication: CanonicalReplication): PreferenceList[] {
  const partitions = owners.length;
  const s = nodes.length;
  if (s === 0) return new Array<PreferenceList>(partitions).fill(emptyList);

  const dcIdx = new Int32Array(s);
  const rackIdx = new Int32Array(s);
  const dcIds = new Map<string, number>();
  const rackIds = new Map<string, number>();
  nodes.forEach((n, i) => {
    const rack = rackKey(n);
    if (!dcIds.has(n.dc)) dcIds.set(n.dc, dcIds.size);
    if (!rackIds.has(rack)) rackIds.set(rack, rackIds.size);
    dcIdx[i] = dcIds.get(n.dc) as number;
    rackIdx[i] = rackIds.get(rack) as number;
  });

  const { groups, groupOf } = buildGroups(nodes, replication);
  const order = new WalkOrder(owners, s);
  const chosen = new Int32Array(s).fill(-1);
  const dcSeen = new Int32Array(dcIds.size).fill(-1);
  const rackSeen = new Int32Array(rackIds.size).fill(-1);
  const picks: number[] = [];
  const result = new Array<PreferenceList>(partitions);
  const interned = new Interner();
  const shape: number[] = [];
  let groupStamp = 0;

  order.forEachPartition((p) => {
    picks.length = 0;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g] as Group;
      groupStamp++;
      let seenDcs = 0;
      let seenRacks = 0;
      for (let r = 0; r < group.need; r++) {
        const level = seenDcs < group.totalDcs ? 2 : seenRacks < group.totalRacks ? 1 : 0;
        for (let i = 0; i < s; i++) {
          const v = order.at(i);
          if (groupOf[v] !== g || chosen[v] === p) continue;
          const newDc = dcSeen[dcIdx[v] as number] !== groupStamp;
          const newRack = rackSeen[rackIdx[v] as number] !== groupStamp;
          const score = newDc ? 2 : newRack ? 1 : 0;
          if (score < level) continue;
          chosen[v] = p;
          picks.push(i);
          if (newDc) seenDcs++;
          if (newRack) seenRacks++;
          dcSeen[dcIdx[v] as number] = groupStamp;
          rackSeen[rackIdx[v] as number] = groupStamp;
          break;
        }
      }
    }
    picks.sort((a, b) => a - b);
    // Node indexes of home, a separator, then fallbacks: the list's identity.
    shape.length = 0;
    for (const i of picks) shape.push(order.at(i));
    shape.push(-1);
    for (let i = 0; i < s && shape.length <= picks.length + maxFallbackNodes; i++) {
      const v = order.at(i);
      if (chosen[v] !== p) shape.push(v);
    }
    // Striped layouts repeat the same few lists; sharing them keeps lookups in cache.
    const list = interned.get(shape, () => makeList(shape, nodes));
    result[p] = list;
  });
  return result;
}

function makeList(shape: readonly number[], nodes: readonly NodeDescriptor[]): PreferenceList {
  const split = shape.indexOf(-1);
  const id = (v: number): NodeId => (nodes[v] as NodeDescriptor).id;
  return Object.freeze({ home: Object.freeze(shape.slice(0, split).map(id)), fallbacks: Object.freeze(shape.slice(split + 1).map(id)) });
}

/** Shares one PreferenceList among partitions with the same node-index shape. */
class Interner {
  private readonly buckets = new Map<number, Array<{ shape: number[]; list: PreferenceList }>>();

  get(shape: readonly number[], make: () => PreferenceList): PreferenceList {
    let h = 0x811c9dc5;
    for (const v of shape) h = Math.imul(h ^ (v + 2), 0x01000193);
    const bucket = this.buckets.get(h);
    const found = bucket?.find((e) => e.shape.length === shape.length && e.shape.every((v, i) => v === shape[i]));
    if (found !== undefined) return found.list;
    const entry = { shape: [...shape], list: make() };
    if (bucket === undefined) this.buckets.set(h, [entry]);
    else bucket.push(entry);
    return entry.list;
  }
}

function buildGroups(nodes: readonly NodeDescriptor[], replication: CanonicalReplication): { groups: Group[]; groupOf: Int32Array } {
  const groupOf = new Int32Array(nodes.length).fill(-1);
  const groups: Group[] = [];
  const addGroup = (members: number[], count: number): void => {
    const dcs = new Set(members.map((i) => (nodes[i] as NodeDescriptor).dc));
    const racks = new Set(members.map((i) => rackKey(nodes[i] as NodeDescriptor)));
    for (const i of members) groupOf[i] = groups.length;
    groups.push({ need: Math.min(count, members.length), totalDcs: dcs.size, totalRacks: racks.size });
  };
  if (replication.perDc === null) {
    addGroup(nodes.map((_, i) => i), replication.n);
  } else {
    for (const [dc, count] of replication.perDc) {
      const members = nodes.flatMap((n, i) => (n.dc === dc ? [i] : []));
      if (members.length > 0) addGroup(members, count);
    }
  }
  return { groups, groupOf };
}

/**
 * The distinct nodes clockwise from each partition, kept as a move-to-front
 * list while sweeping the ring backwards: the order at p is the order at p+1
 * with p's owner moved to the front. Two sweeps handle the wrap-around, so the
 * whole ring costs O(partitions + reads) instead of a walk per partition.
 */
class WalkOrder {
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private head = 0;
  private readonly prefix: Int32Array;
  private prefixLength = 0;
  private cursor = 0;

  constructor(
    private readonly owners: ArrayLike<number>,
    size: number,
  ) {
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.prefix = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      this.next[i] = i + 1 < size ? i + 1 : -1;
      this.prev[i] = i - 1;
    }
  }

  forEachPartition(visit: (partition: number) => void): void {
    const count = this.owners.length;
    for (let p = count - 1; p >= 0; p--) this.moveToFront(this.owners[p] as number);
    for (let p = count - 1; p >= 0; p--) {
      this.moveToFront(this.owners[p] as number);
      this.prefixLength = 0;
      this.cursor = this.head;
      visit(p);
    }
  }

  /** The i-th distinct node clockwise from the current partition (i < node count). */
  at(i: number): number {
    while (this.prefixLength <= i) {
      this.prefix[this.prefixLength++] = this.cursor;
      this.cursor = this.next[this.cursor] as number;
    }
    return this.prefix[i] as number;
  }

  private moveToFront(v: number): void {
    if (v < 0 || v === this.head) return;
    const before = this.prev[v] as number;
    const after = this.next[v] as number;
    this.next[before] = after;
    if (after >= 0) this.prev[after] = before;
    this.prev[v] = -1;
    this.next[v] = this.head;
    this.prev[this.head] = v;
    this.head = v;
  }
}
