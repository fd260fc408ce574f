/** Clock implementations: the real one, and a virtual one driven by tests and sim/. */
import { performance } from 'node:perf_hooks';
import type { Clock, Timer, TimerOptions } from './env.ts';
import { assert } from './assert.ts';

export class RealClock implements Clock {
  nowMs(): number {
    return performance.now();
  }

  wallMs(): number {
    return Date.now();
  }

  setTimer(delayMs: number, fn: () => void, options?: TimerOptions): Timer {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    // A pending protocol timer must not keep a finished process alive.
    if (options?.keepAlive !== true) handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  }

  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, delayMs)));
  }
}

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** Lets queued promise continuations run before the next virtual event. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Virtual time. Nothing moves until the driver calls `advance`/`runUntil`;
 * timers due at the same instant fire in the order they were set, so a run is
 * a pure function of its inputs. Between two timers the driver lets pending
 * promise continuations settle, as a real event loop would.
 */
export class VirtualClock implements Clock {
  private now: number;
  private readonly wallOffsetMs: number;
  private seq = 0;
  private heap: PendingTimer[] = [];

  constructor(options: { startMs?: number; wallOffsetMs?: number } = {}) {
    this.now = options.startMs ?? 0;
    // A fixed, plausible epoch so TTL arithmetic looks like production.
    this.wallOffsetMs = options.wallOffsetMs ?? 1_700_000_000_000;
  }

  nowMs(): number {
    return this.now;
  }

  wallMs(): number {
    return this.now + this.wallOffsetMs;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const timer: PendingTimer = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(delayMs, resolve));
  }

  /** Time of the next live timer, or undefined when none is pending. */
  nextAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  pendingTimers(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /** Fires the next due timer (advancing time to it); false when none is left. */
  async step(): Promise<boolean> {
    await drainMicrotasks();
    this.dropCancelled();
    const timer = this.pop();
    if (timer === undefined) return false;
    assert(timer.at >= this.now, 'virtual time never goes backwards');
    this.now = timer.at;
    timer.fn();
    await drainMicrotasks();
    return true;
  }

  /** Runs every timer due up to `this.now + ms`, then sets time to that instant. */
  async advance(ms: number): Promise<void> {
    await this.runUntilTime(this.now + ms);
  }

  async runUntilTime(targetMs: number): Promise<void> {
    for (;;) {
      await drainMicrotasks();
      const next = this.nextAt();
      if (next === undefined || next > targetMs) break;
      await this.step();
    }
    if (targetMs > this.now) this.now = targetMs;
  }

  /** Steps until `done()` holds or `limitMs` of virtual time passes; returns whether it held. */
  async runUntil(done: () => boolean, limitMs: number): Promise<boolean> {
    const deadline = this.now + limitMs;
    for (;;) {
      await drainMicrotasks();
      if (done()) return true;
      const next = this.nextAt();
      if (next === undefined || next > deadline) {
        if (deadline > this.now) this.now = deadline;
        return done();
      }
      await this.step();
    }
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && (this.heap[0] as PendingTimer).cancelled) this.pop();
  }

  private less(a: PendingTimer, b: PendingTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: PendingTimer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i] as PendingTimer, heap[parent] as PendingTimer)) break;
      [heap[i], heap[parent]] = [heap[parent] as PendingTimer, heap[i] as PendingTimer];
      i = parent;
    }
  }

  private pop(): PendingTimer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.less(heap[l] as PendingTimer, heap[m] as PendingTimer)) m = l;
        if (r < heap.length && this.less(heap[r] as PendingTimer, heap[m] as PendingTimer)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m] as PendingTimer, heap[i] as PendingTimer];
        i = m;
      }
    }
    return top;
  }
}
