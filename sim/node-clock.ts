/**
 * A node's view of the shared virtual clock. Killing it models a process
 * dying: its pending timers never fire and new ones are ignored, while the
 * rest of the cluster's time goes on.
 */
import type { Clock, Timer } from '../src/core/index.ts';

export class NodeClock implements Clock {
  private readonly live = new Set<Timer>();
  private dead = false;

  constructor(private readonly shared: Clock) {}

  nowMs(): number {
    return this.shared.nowMs();
  }

  wallMs(): number {
    return this.shared.wallMs();
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    if (this.dead) return { cancel() {} };
    const timer: Timer = this.shared.setTimer(delayMs, () => {
      this.live.delete(timer);
      if (!this.dead) fn();
    });
    this.live.add(timer);
    return {
      cancel: () => {
        this.live.delete(timer);
        timer.cancel();
      },
    };
  }

  /** A sleep on a dead node never resolves: the code awaiting it died with the process. */
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(delayMs, resolve));
  }

  kill(): void {
    this.dead = true;
    for (const timer of this.live) timer.cancel();
    this.live.clear();
  }

  get killed(): boolean {
    return this.dead;
  }
}
