/**
 * Vector clocks keyed by the id of the *coordinating replica* (never the
 * client: per-client actors made Riak's clocks grow without bound). Each entry
 * remembers when it last advanced so that pruning can prefer old entries.
 *
 * A clock is an array of entries sorted by node id (code-unit order), so two
 * equal clocks have equal encodings and merges are linear. docs/consistency.md
 * states the rules; the object model (object.ts) uses clocks as causal
 * contexts and dots, which is what makes pruning safe.
 */
import type { NodeId } from '../core/index.ts';

export interface ClockEntry {
  readonly node: NodeId;
  /** Highest event of `node` this clock has seen. */
  readonly counter: number;
  /** Wall time (epoch ms) when the entry last advanced; only pruning reads it. */
  readonly lastWallMs: number;
}

/** Entries sorted by node id, at most one per node, counters ≥ 1. */
export type VClock = readonly ClockEntry[];

/** One event: the `counter`-th write coordinated by `node` (a "dot"). */
export interface Dot {
  readonly node: NodeId;
  readonly counter: number;
}

export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/**
 * What a write supersedes: every event the clock covers, plus the exact
 * `dots`. A read hands out a plain clock. A write hands back its own versions
 * as exact dots when folding them into the clock would also cover a sibling
 * the writer never saw (docs/consistency.md, "Write contexts"). It is a clock
 * with an optional field, so code that only needs the clock can take it as one.
 */
export type WriteContext = VClock & { readonly dots?: readonly Dot[] };

/** Most exact dots one write context carries; beyond it the oldest are dropped (a dropped dot can only leave a sibling). */
export const maxContextDots = 64;

/** The context as a plain clock (exact dots removed). */
export function plainClock(context: WriteContext): VClock {
  return context.dots === undefined ? context : [...context];
}

/** True when the context supersedes the event `dot`. */
export function contextCovers(context: WriteContext, dot: Dot): boolean {
  if (coversDot(context, dot)) return true;
  for (const d of context.dots ?? []) if (d.node === dot.node && d.counter === dot.counter) return true;
  return false;
}

/** A context from a clock and exact dots (the dots sorted; none: the clock itself). */
export function withDots(clock: VClock, dots: readonly Dot[]): WriteContext {
  if (dots.length === 0) return clock;
  // Dot counters grow with time, so the largest counters are the newest writes.
  const kept = dots.length > maxContextDots ? [...dots].sort((a, b) => b.counter - a.counter).slice(0, maxContextDots) : [...dots];
  kept.sort((a, b) => (a.node !== b.node ? (a.node < b.node ? -1 : 1) : a.counter - b.counter));
  return Object.assign([...clock], { dots: kept });
}

export const emptyClock: VClock = Object.freeze([]) as VClock;

function cmpNode(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The counter of `node` in `clock`, 0 when absent. */
export function counterOf(clock: VClock, node: NodeId): number {
  // Clocks are small (a handful of replicas); a linear scan beats a binary search here.
  for (const e of clock) if (e.node === node) return e.counter;
  return 0;
}

/** Least upper bound: entry-wise maximum (commutative, associative, idempotent). */
export function mergeClocks(a: VClock, b: VClock): VClock {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  // A replica merging a newer object (or an older one) gets one side back unchanged: no new array or entries.
  if (dominates(b, a)) return b;
  if (dominates(a, b)) return a;
  // Exact size: a pushed-to empty array grows to 17 slots at its first push.
  const out = new Array<ClockEntry>(mergedLength(a, b));
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : cmpNode(x.node, y.node);
    if (c < 0) {
      out[k++] = x as ClockEntry;
      i++;
    } else if (c > 0) {
      out[k++] = y as ClockEntry;
      j++;
    } else {
      const ex = x as ClockEntry;
      const ey = y as ClockEntry;
      out[k++] =
        ex.counter === ey.counter && ex.lastWallMs === ey.lastWallMs
          ? ex
          : { node: ex.node, counter: Math.max(ex.counter, ey.counter), lastWallMs: Math.max(ex.lastWallMs, ey.lastWallMs) };
      i++;
      j++;
    }
  }
  return out;
}

/** How many distinct nodes two sorted clocks name together. */
function mergedLength(a: VClock, b: VClock): number {
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    const c = cmpNode((a[i] as ClockEntry).node, (b[j] as ClockEntry).node);
    if (c <= 0) i++;
    if (c >= 0) j++;
    n++;
  }
  return n + (a.length - i) + (b.length - j);
}

/** True when every entry of `b` has one in `a` with a counter and a wall time at least as large: merging `b` into `a` gives `a`'s values. */
export function dominates(a: VClock, b: VClock): boolean {
  if (b.length > a.length) return false;
  let i = 0;
  for (const y of b) {
    while (i < a.length && (a[i] as ClockEntry).node < y.node) i++;
    const x = a[i];
    if (x === undefined || x.node !== y.node || x.counter < y.counter || x.lastWallMs < y.lastWallMs) return false;
    i++;
  }
  return true;
}

/** True when `a` has seen everything `b` has (a ≥ b entry-wise). Reflexive, antisymmetric, transitive. */
export function descends(a: VClock, b: VClock): boolean {
  let i = 0;
  for (const y of b) {
    while (i < a.length && cmpNode((a[i] as ClockEntry).node, y.node) < 0) i++;
    const x = a[i];
    if (x === undefined || x.node !== y.node || x.counter < y.counter) return false;
  }
  return true;
}

/** How `a` relates to `b` causally ('before': a happened before b). */
export function compareClocks(a: VClock, b: VClock): ClockOrder {
  const ab = descends(a, b);
  const ba = descends(b, a);
  if (ab && ba) return 'equal';
  if (ab) return 'after';
  if (ba) return 'before';
  return 'concurrent';
}

/** True when the clock has seen the event `dot`. */
export function coversDot(clock: VClock, dot: Dot): boolean {
  return counterOf(clock, dot.node) >= dot.counter;
}

/** The clock with `node`'s entry raised to `counter` (never lowered). */
export function withEvent(clock: VClock, node: NodeId, counter: number, wallMs: number): VClock {
  return mergeClocks(clock, [{ node, counter, lastWallMs: wallMs }]);
}

/** Limits on clock size; docs/consistency.md explains why pruning cannot lose a write. */
export interface ClockPrunePolicy {
  /** Below this many entries nothing is pruned. */
  softEntries: number;
  /** Past this many entries the oldest prunable entries go regardless of age. */
  maxEntries: number;
  /** Between soft and max, only entries idle for longer than this go. */
  oldAgeMs: number;
}

export const defaultClockPrunePolicy: ClockPrunePolicy = Object.freeze({
  softEntries: 16,
  maxEntries: 64,
  oldAgeMs: 24 * 60 * 60 * 1000,
});

/**
 * Shrinks a causal context. Entries for nodes in `keep` (the writers of the
 * versions the context describes) are never removed: a context must cover its
 * own versions. Removing any other entry only makes the context cover fewer
 * events, so merges keep more versions: at worst a superseded version comes
 * back as a sibling, never is a live one dropped.
 */
export function pruneClock(clock: VClock, nowWallMs: number, keep: ReadonlySet<NodeId>, policy: ClockPrunePolicy = defaultClockPrunePolicy): VClock {
  if (clock.length <= policy.softEntries) return clock;
  const prunable = clock.filter((e) => !keep.has(e.node)).sort((x, y) => x.lastWallMs - y.lastWallMs || cmpNode(x.node, y.node));
  const drop = new Set<NodeId>();
  let size = clock.length;
  for (const e of prunable) {
    if (size <= policy.softEntries) break;
    const old = nowWallMs - e.lastWallMs > policy.oldAgeMs;
    if (!old && size <= policy.maxEntries) break;
    drop.add(e.node);
    size--;
  }
  return drop.size === 0 ? clock : clock.filter((e) => !drop.has(e.node));
}

/** Builds a well-formed clock from entries in any order (duplicates merged). */
export function clockFrom(entries: Iterable<ClockEntry>): VClock {
  let clock: VClock = emptyClock;
  for (const e of entries) clock = mergeClocks(clock, [e]);
  return clock;
}

export function clocksEqual(a: VClock, b: VClock): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ClockEntry;
    const y = b[i] as ClockEntry;
    if (x.node !== y.node || x.counter !== y.counter || x.lastWallMs !== y.lastWallMs) return false;
  }
  return true;
}
