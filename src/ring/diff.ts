/**
 * Ownership diffs: which positions of the ring change replicas between two
 * rings, and which node must send data to which. Streaming on join, leave and
 * replacement is driven by this list.
 */
import { InvalidArgumentError, type NodeId } from '../core/index.ts';
import { tokenSpaceSize } from './constants.ts';
import type { PositionRange, Ring } from './ring.ts';

/** One node starting to hold a replica, and where it gets the data. */
export interface Transfer {
  /** The node that gives the replica up, else one that keeps it; null when no node held it before. */
  from: NodeId | null;
  to: NodeId;
}

export interface OwnershipChange {
  /** Partition in the `after` ring. */
  partition: number;
  /** Partition in the `before` ring holding the same positions (equal to `partition` for balanced). */
  beforePartition: number;
  /** Positions that change hands (all of `partition` for balanced, possibly part of it for random). */
  range: PositionRange;
  /** Home replicas before and after, in preference order. */
  from: readonly NodeId[];
  to: readonly NodeId[];
  /** One per node in `to` but not in `from`, in `to` order; empty when only the order changed. */
  transfers: Transfer[];
  /** Nodes in `from` but not in `to` that no transfer names: they may drop the data once others have it. */
  released: NodeId[];
}

/**
 * Every position whose home replica list (order included) differs between
 * `before` and `after`. Applying each change's `to` over `before` gives
 * `after` exactly. Both rings must use the same strategy (and for balanced,
 * the same partition count).
 */
export function diffOwnership(before: Ring, after: Ring): OwnershipChange[] {
  if (before.strategy !== after.strategy) {
    throw new InvalidArgumentError(`Cannot diff a ${before.strategy} ring against a ${after.strategy} ring: their partitions do not line up`);
  }
  if (before.strategy === 'balanced') {
    if (before.partitionCount() !== after.partitionCount()) {
      throw new InvalidArgumentError(`Cannot diff rings of ${before.partitionCount()} and ${after.partitionCount()} partitions: partitions must match`);
    }
    const out: OwnershipChange[] = [];
    for (let p = 0; p < after.partitionCount(); p++) {
      const change = compare(before.preferenceList(p).home, after.preferenceList(p).home);
      if (change !== undefined) out.push({ partition: p, beforePartition: p, range: after.partitionRange(p), ...change });
    }
    return out;
  }
  return diffRandom(before, after);
}

/** Random rings: cut the circle at the union of both rings' tokens; each piece lies in one partition of each. */
function diffRandom(before: Ring, after: Ring): OwnershipChange[] {
  const cuts = mergeUnique(before.tokenPositions() ?? new Uint32Array(0), after.tokenPositions() ?? new Uint32Array(0));
  const out: OwnershipChange[] = [];
  if (cuts.length === 0) {
    const change = compare(before.preferenceList(0).home, after.preferenceList(0).home);
    if (change !== undefined) out.push({ partition: 0, beforePartition: 0, range: { first: 0, last: tokenSpaceSize - 1 }, ...change });
    return out;
  }
  for (let k = 0; k < cuts.length; k++) {
    const last = cuts[k] as number;
    const first = ((cuts[k === 0 ? cuts.length - 1 : k - 1] as number) + 1) % tokenSpaceSize;
    const partition = after.partitionAt(last);
    const beforePartition = before.partitionAt(last);
    const change = compare(before.preferenceList(beforePartition).home, after.preferenceList(partition).home);
    if (change !== undefined) out.push({ partition, beforePartition, range: { first, last }, ...change });
  }
  return out;
}

function compare(from: readonly NodeId[], to: readonly NodeId[]): Pick<OwnershipChange, 'from' | 'to' | 'transfers' | 'released'> | undefined {
  if (from.length === to.length && from.every((n, i) => n === to[i])) return undefined;
  const lost = from.filter((n) => !to.includes(n));
  const kept = from.filter((n) => to.includes(n));
  const gained = to.filter((n) => !from.includes(n));
  const transfers = gained.map((node, i) => ({ from: lost[i] ?? kept[0] ?? null, to: node }));
  return { from, to, transfers, released: lost.slice(gained.length) };
}

function mergeUnique(a: Uint32Array, b: Uint32Array): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = i < a.length ? (a[i] as number) : Infinity;
    const y = j < b.length ? (b[j] as number) : Infinity;
    const v = Math.min(x, y);
    if (x === v) i++;
    if (y === v) j++;
    if (out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

/** Number of positions a change covers (for weighting by key share). */
export function rangeSize(range: PositionRange, positionCount: number): number {
  return range.last >= range.first ? range.last - range.first + 1 : positionCount - range.first + range.last + 1;
}
