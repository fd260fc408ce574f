/**
 * The balanced strategy's claims: Q equal partitions, each node owning
 * ⌊Q/S⌋ or ⌈Q/S⌉ of them (Dynamo's strategy 3, Riak's claim).
 *
 * - A fresh cluster gets a striped layout: partitions dealt to data centers,
 *   then racks, in proportion and evenly spaced, then round-robin to nodes, so
 *   any few consecutive partitions have distinct owners in distinct racks.
 * - A join is incremental: the newcomer takes exactly its share, one
 *   partition at a time from the node with the largest surplus, choosing
 *   partitions where it has no neighbour of itself (or its rack) within the
 *   replication window. Only the partitions it takes move: the minimum.
 * - A leave hands each of the leaver's partitions to the node with the
 *   largest deficit (the least loaded) that does not already sit nearby.
 *
 * Every choice is a function of the owner array and the sorted node list
 * only, so every node computes the same ring from the same history.
 */
import { assert } from '../core/index.ts';
import { rackKey, type NodeDescriptor } from './topology.ts';

/** What a claim needs to know about nodes, by index in the sorted node list. */
export interface ClaimContext {
  /** Rack identity (dc + rack) of each node index. */
  readonly rackOf: Int32Array;
  /** Neighbours on each side that share a preference list with a partition: total replicas − 1. */
  readonly window: number;
}

export function rackIds(nodes: readonly NodeDescriptor[]): Int32Array {
  const ids = new Map<string, number>();
  const out = new Int32Array(nodes.length);
  nodes.forEach((n, i) => {
    const key = rackKey(n);
    if (!ids.has(key)) ids.set(key, ids.size);
    out[i] = ids.get(key) as number;
  });
  return out;
}

/**
 * Labels `length` positions with groups in proportion to `sizes`, each
 * group's positions spread evenly (its k-th of c near (k + ½)/c of the way
 * along). Counts are rounded by largest remainder, ties to the lower group.
 */
function spreadLabels(length: number, sizes: readonly number[]): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const counts = sizes.map((size) => Math.floor((length * size) / total));
  const order = sizes.map((size, g) => ({ g, rest: (length * size) % total })).sort((x, y) => y.rest - x.rest || x.g - y.g);
  let missing = length - counts.reduce((a, b) => a + b, 0);
  for (const { g } of order) {
    if (missing === 0) break;
    counts[g] = (counts[g] as number) + 1;
    missing--;
  }
  const keyed: Array<{ at: number; g: number }> = [];
  counts.forEach((c, g) => {
    for (let k = 0; k < c; k++) keyed.push({ at: (k + 0.5) / c, g });
  });
  keyed.sort((x, y) => x.at - y.at || x.g - y.g);
  return keyed.map((e) => e.g);
}

function groupBy(indexes: readonly number[], keyOf: (i: number) => string): number[][] {
  const groups = new Map<string, number[]>();
  for (const i of indexes) {
    const key = keyOf(i);
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [i]);
    else list.push(i);
  }
  return [...groups.keys()].sort().map((k) => groups.get(k) as number[]);
}

/**
 * The layout of a fresh cluster. `nodes` must be sorted by id. Partitions are
 * dealt to data centers in proportion to their node counts, each DC's spread
 * evenly over the ring; each DC's partitions are dealt to its racks the same
 * way; each rack's partitions go round-robin to its nodes. With one rack this
 * is the plain stripe (partition p owned by node p mod S); with several, every
 * rack's partitions are evenly spaced, so a rack-aware walk finds each rack at
 * regular distances and replica load follows partition load.
 */
export function freshLayout(nodes: readonly NodeDescriptor[], partitions: number): Int32Array {
  const owners = new Int32Array(partitions).fill(-1);
  if (nodes.length === 0) return owners;
  const all = nodes.map((_, i) => i);
  const deal = (positions: readonly number[], groups: readonly (readonly number[])[], next: (positions: number[], group: readonly number[]) => void): void => {
    const labels = spreadLabels(positions.length, groups.map((g) => g.length));
    const split: number[][] = groups.map(() => []);
    labels.forEach((g, k) => (split[g] as number[]).push(positions[k] as number));
    groups.forEach((group, g) => next(split[g] as number[], group));
  };
  const roundRobin = (positions: number[], members: readonly number[]): void => {
    positions.forEach((p, k) => {
      owners[p] = members[k % members.length] as number;
    });
  };
  const everything = Array.from({ length: partitions }, (_, p) => p);
  deal(everything, groupBy(all, (i) => (nodes[i] as NodeDescriptor).dc), (dcPositions, dc) =>
    deal(dcPositions, groupBy(dc, (i) => (nodes[i] as NodeDescriptor).rack), roundRobin),
  );
  return owners;
}

/** Loads each member should end with: ⌊Q/m⌋, plus one for the most loaded now (ties: lower index), which minimises movement. */
function targets(owners: Int32Array, members: readonly number[], nodeCount: number): { load: Int32Array; target: Int32Array } {
  const load = new Int32Array(nodeCount);
  for (const o of owners) if (o >= 0) load[o] = (load[o] as number) + 1;
  const target = new Int32Array(nodeCount);
  const base = Math.floor(owners.length / members.length);
  const extra = owners.length % members.length;
  const ranked = [...members].sort((a, b) => (load[b] as number) - (load[a] as number) || a - b);
  ranked.forEach((m, rank) => {
    target[m] = base + (rank < extra ? 1 : 0);
  });
  return { load, target };
}

/**
 * How badly `node` fits at partition p: 2 when it already owns a partition
 * within the window (its preference lists would overlap itself), 1 when a
 * node of its rack does, else 0.
 */
function misfit(owners: Int32Array, p: number, node: number, ctx: ClaimContext): number {
  const q = owners.length;
  const rack = ctx.rackOf[node] as number;
  let worst = 0;
  for (let d = -ctx.window; d <= ctx.window; d++) {
    if (d === 0) continue;
    const o = owners[(((p + d) % q) + q) % q] as number;
    if (o === node) return 2;
    if (o >= 0 && ctx.rackOf[o] === rack) worst = 1;
  }
  return worst;
}

/** Gives `newcomer` (an index with no partitions yet) its share. Mutates `owners`. */
export function claimForJoin(owners: Int32Array, newcomer: number, members: readonly number[], ctx: ClaimContext): void {
  const nodeCount = ctx.rackOf.length;
  if (members.length === 1) {
    owners.fill(newcomer);
    return;
  }
  const { load, target } = targets(owners, members, nodeCount);
  const wanted = target[newcomer] as number;
  // Take one partition at a time from the largest surplus, counting first.
  const surplus = new Int32Array(nodeCount);
  for (const m of members) surplus[m] = Math.max(0, (load[m] as number) - (target[m] as number));
  const give = new Int32Array(nodeCount);
  for (let taken = 0; taken < wanted; taken++) {
    let best = -1;
    for (const m of members) if ((surplus[m] as number) > 0 && (best < 0 || (surplus[m] as number) > (surplus[best] as number))) best = m;
    assert(best >= 0, 'a join found no surplus to take although loads sum to the partition count');
    surplus[best] = (surplus[best] as number) - 1;
    give[best] = (give[best] as number) + 1;
  }
  takeSpread(owners, give, wanted, newcomer, ctx);
}

/**
 * Takes `count` partitions for `taker`, `give[d]` of them from donor d, aiming
 * at evenly spaced points of the whole ring and settling near each on the
 * best-fitting partition whose owner still has some to give. Spacing the
 * newcomer globally (not per donor) keeps any N consecutive partitions owned
 * by distinct nodes, so replica load stays N × partition load.
 */
function takeSpread(owners: Int32Array, give: Int32Array, count: number, taker: number, ctx: ClaimContext): void {
  const q = owners.length;
  const spacing = q / count;
  const reach = Math.max(1, Math.ceil(spacing / 2));
  for (let t = 0; t < count; t++) {
    const centre = Math.floor((t + 0.5) * spacing);
    let best = -1;
    let bestFit = 3;
    for (let step = 0; step < 2 * q && bestFit > 0; step++) {
      if (step > 2 * reach && best >= 0) break;
      const offset = step % 2 === 0 ? step / 2 : -(step + 1) / 2;
      const p = (((centre + offset) % q) + q) % q;
      const owner = owners[p] as number;
      if (owner < 0 || owner === taker || (give[owner] as number) === 0) continue;
      const fit = misfit(owners, p, taker, ctx);
      if (fit < bestFit) {
        best = p;
        bestFit = fit;
      }
    }
    assert(best >= 0, 'a join ran out of partitions to take although donors had some to give');
    const donor = owners[best] as number;
    give[donor] = (give[donor] as number) - 1;
    owners[best] = taker;
  }
}

/**
 * Hands every partition of `leaver` to the remaining `members`, each to the
 * best-fitting node among those with the largest deficit. Mutates `owners`.
 */
export function claimForLeave(owners: Int32Array, leaver: number, members: readonly number[], ctx: ClaimContext): void {
  if (members.length === 0) {
    owners.fill(-1);
    return;
  }
  const nodeCount = ctx.rackOf.length;
  const orphans: number[] = [];
  owners.forEach((o, p) => {
    if (o === leaver) orphans.push(p);
  });
  for (const p of orphans) owners[p] = -1;
  const { load, target } = targets(owners, members, nodeCount);
  const deficit = new Int32Array(nodeCount);
  for (const m of members) deficit[m] = Math.max(0, (target[m] as number) - (load[m] as number));
  for (const p of orphans) {
    let best = -1;
    let bestFit = 3;
    for (const m of members) {
      if ((deficit[m] as number) === 0) continue;
      const fit = misfit(owners, p, m, ctx);
      if (best < 0 || fit < bestFit || (fit === bestFit && (deficit[m] as number) > (deficit[best] as number))) {
        best = m;
        bestFit = fit;
      }
    }
    assert(best >= 0, 'a leave found no node with room for a partition although targets sum to the partition count');
    owners[p] = best;
    deficit[best] = (deficit[best] as number) - 1;
  }
}
