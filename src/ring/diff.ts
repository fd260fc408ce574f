/**
 * Ownership diffs: which slots change replicas between two rings, and which
 * node must send data to which. Streaming on join, leave and replacement is
 * driven by this list.
 */
import type { NodeId } from '../core/index.ts';
import { redisSlotCount } from './constants.ts';
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
  /** Partition in the `before` ring holding the same slots (equal to `partition` when both are balanced rings of one size). */
  beforePartition: number;
  /** Slots that change hands, inclusive: a run within one partition of each ring. */
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
 * Every run of slots whose home replica list (order included) differs between
 * `before` and `after`. Applying each change's `to` over `before` gives
 * `after` exactly. Both strategies place whole slots, so any two rings can be
 * compared, even of different strategies or partition counts.
 */
export function diffOwnership(before: Ring, after: Ring): OwnershipChange[] {
  const out: OwnershipChange[] = [];
  let runStart = 0;
  let runBefore = before.partitionAt(0);
  let runAfter = after.partitionAt(0);
  const flush = (last: number): void => {
    const change = compare(before.preferenceList(runBefore).home, after.preferenceList(runAfter).home);
    if (change !== undefined) out.push({ partition: runAfter, beforePartition: runBefore, range: { first: runStart, last }, ...change });
  };
  for (let slot = 1; slot < redisSlotCount; slot++) {
    const b = before.partitionAt(slot);
    const a = after.partitionAt(slot);
    if (b === runBefore && a === runAfter) continue;
    flush(slot - 1);
    runStart = slot;
    runBefore = b;
    runAfter = a;
  }
  flush(redisSlotCount - 1);
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

/** Number of slots a range covers (it wraps past 16383 when first > last). */
export function rangeSize(range: PositionRange): number {
  return range.last >= range.first ? range.last - range.first + 1 : redisSlotCount - range.first + range.last + 1;
}
