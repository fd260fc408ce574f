/**
 * A PN-counter CRDT (Shapiro et al., "A comprehensive study of Convergent and
 * Commutative Replicated Data Types", 2011): each lane counts increments (p)
 * and decrements (n) made by one node; merge is the lane-wise maximum and the
 * value is Σp − Σn. Concurrent increments on different nodes land in
 * different lanes and all count.
 *
 * A lane is keyed by (node, epoch), not by node alone: when a node starts a
 * counter afresh (first INCR, after a delete or an expiry) it opens a new lane
 * whose epoch is the dot of that write. A copy of the old counter that is
 * still travelling elsewhere keeps its own lanes, so the lane-wise maximum
 * never mixes two histories of one node (which would drop increments).
 */
import { InvalidArgumentError } from '../core/index.ts';
import type { NodeId } from '../core/index.ts';

export interface CounterLane {
  readonly node: NodeId;
  readonly epoch: number;
  /** Sum of increments, ≥ 0. */
  readonly p: bigint;
  /** Sum of decrements as a positive number, ≥ 0. */
  readonly n: bigint;
}

/** Lanes sorted by (node, epoch), at most one per pair. */
export type CounterState = readonly CounterLane[];

export const emptyCounter: CounterState = Object.freeze([]) as CounterState;

/** Redis counters are signed 64-bit; ours refuse to leave that range the same way. */
export const maxCounterValue = (1n << 63n) - 1n;
export const minCounterValue = -(1n << 63n);

/** Redis's wording, so the RESP front end can reply `-ERR value is not an integer or out of range`. */
export const notAnIntegerMessage = 'value is not an integer or out of range';
/** Redis's wording for INCR past the signed 64-bit range. */
export const incrOverflowMessage = 'increment or decrement would overflow';

/** True for the InvalidArgumentError thrown when INCR meets a value that is not an integer. */
export function isNotAnIntegerError(error: unknown): boolean {
  return error instanceof InvalidArgumentError && error.message === notAnIntegerMessage;
}

/** True for the InvalidArgumentError thrown when INCR would leave the 64-bit range. */
export function isIncrOverflowError(error: unknown): boolean {
  return error instanceof InvalidArgumentError && error.message === incrOverflowMessage;
}

function cmpLane(a: CounterLane, b: CounterLane): number {
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.epoch - b.epoch;
}

export function counterValue(state: CounterState): bigint {
  let total = 0n;
  for (const lane of state) total += lane.p - lane.n;
  return total;
}

/** Lane-wise maximum: commutative, associative, idempotent. */
export function mergeCounters(a: CounterState, b: CounterState): CounterState {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: CounterLane[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : cmpLane(x, y);
    if (c < 0) {
      out.push(x as CounterLane);
      i++;
    } else if (c > 0) {
      out.push(y as CounterLane);
      j++;
    } else {
      const lx = x as CounterLane;
      const ly = y as CounterLane;
      out.push(lx.p >= ly.p && lx.n >= ly.n ? lx : { node: lx.node, epoch: lx.epoch, p: lx.p > ly.p ? lx.p : ly.p, n: lx.n > ly.n ? lx.n : ly.n });
      i++;
      j++;
    }
  }
  return out;
}

/**
 * Adds `delta` in `node`'s newest lane, or opens lane (node, `freshEpoch`)
 * when the node has none. Throws InvalidArgumentError (incrOverflowMessage)
 * when the value would leave the signed 64-bit range.
 */
export function incrementCounter(state: CounterState, node: NodeId, freshEpoch: number, delta: bigint): CounterState {
  const value = counterValue(state) + delta;
  if (value > maxCounterValue || value < minCounterValue) throw new InvalidArgumentError(incrOverflowMessage);
  let lane: CounterLane | undefined;
  for (const l of state) if (l.node === node && (lane === undefined || l.epoch > lane.epoch)) lane = l;
  const base = lane ?? { node, epoch: freshEpoch, p: 0n, n: 0n };
  const next: CounterLane = delta >= 0n ? { ...base, p: base.p + delta } : { ...base, n: base.n - delta };
  if (lane === undefined) return [...state, next].sort(cmpLane);
  return state.map((l) => (l === lane ? next : l));
}

const integerPattern = /^(0|-?[1-9][0-9]*)$/;

/**
 * The integer a plain value holds, by Redis's rules (base 10, optional minus,
 * no leading zeros, plus sign or spaces, within signed 64 bits); undefined otherwise.
 */
export function parseInteger(bytes: Uint8Array): bigint | undefined {
  if (bytes.length === 0 || bytes.length > 20) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!integerPattern.test(text)) return undefined;
  const value = BigInt(text);
  return value > maxCounterValue || value < minCounterValue ? undefined : value;
}
