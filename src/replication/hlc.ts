/**
 * A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014)
 * kept as one float64 in milliseconds: the physical part is whole
 * milliseconds of wall time, the logical part lives in the fraction as
 * multiples of 1/1024 ms. Values stay readable as epoch milliseconds (the
 * RESP winner compares them), never go backwards on one node, and a write
 * that observed a version is always stamped later than it.
 */
import type { Clock } from '../core/index.ts';

/**
 * How far ahead of local wall time an observed timestamp may pull this
 * clock. A peer with a clock hours fast would otherwise drag every node's
 * timestamps along with it (the HLC paper bounds drift the same way).
 */
export const maxHlcAheadMs = 60_000;

/** Logical ticks per millisecond. A power of two keeps the sum exact in float64 until the year 2248. */
export const hlcTicksPerMs = 1024;
const tickMs = 1 / hlcTicksPerMs;

export class HybridClock {
  private last = 0;

  constructor(private readonly clock: Clock) {}

  /** A timestamp later than every one this clock issued or observed. */
  now(): number {
    return this.nowAt(Math.floor(this.clock.wallMs()));
  }

  /** `now()` for a caller that has just read the clock's wall time (whole ms): one clock read per write instead of two. */
  nowAt(wall: number): number {
    const next = wall > this.last ? wall : this.last + tickMs;
    this.last = next;
    return next;
  }

  /** Takes in a timestamp seen on another node so later local stamps exceed it. */
  observe(timestampMs: number): void {
    if (!Number.isFinite(timestampMs) || timestampMs <= this.last) return;
    this.last = Math.min(timestampMs, Math.floor(this.clock.wallMs()) + maxHlcAheadMs);
  }

  /** The last timestamp issued or observed (0 before any). */
  peek(): number {
    return this.last;
  }
}

/**
 * A timestamp as an integer count of ticks: a dot counter that grows with
 * time, so dots stay unique per node even after an object is purged and
 * written again (docs/consistency.md, "dot counters").
 */
export function hlcTicks(timestampMs: number): number {
  return Math.round(timestampMs * hlcTicksPerMs);
}
