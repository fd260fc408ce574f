/**
 * The phi accrual failure detector (Hayashibara et al., 2004), in the form
 * Cassandra uses: inter-arrival times of heartbeat *advances* are modelled as
 * exponential, so phi(t) = (t - last) / mean · log10(e). Phi is a suspicion
 * level on a log scale: phi = 8 means the chance that a live node stays this
 * silent is 10^-8 under the model. An exponential model (rather than Akka's
 * normal one) suits gossip, where a heartbeat reaches us by indirect paths and
 * its arrival times are irregular; the normal model's small deviation would
 * suspect on the first late round.
 */
import { assert } from '../core/index.ts';

const log10e = Math.LOG10E;

export interface PhiOptions {
  /** Floor on the estimated mean: bursts of arrivals must not make phi hair-trigger. */
  readonly minMeanMs: number;
  /** Ceiling on the mean, which bounds the detection time of a crashed node. */
  readonly maxMeanMs: number;
  /** Longer gaps (a partition, a restart) are not samples of normal behaviour. */
  readonly maxSampleMs: number;
  readonly windowSize: number;
}

export class PhiAccrualDetector {
  private readonly samples: number[] = [];
  private next = 0;
  private sum = 0;
  private lastMs: number | undefined;

  constructor(private readonly options: PhiOptions) {
    assert(options.minMeanMs > 0 && options.maxMeanMs >= options.minMeanMs, 'phi detector needs 0 < minMeanMs <= maxMeanMs');
    assert(options.windowSize > 0, 'phi detector needs a positive window');
  }

  /** Records that the peer's heartbeat advanced at `nowMs`. */
  heartbeat(nowMs: number): void {
    if (this.lastMs !== undefined) {
      const interval = nowMs - this.lastMs;
      if (interval >= 0 && interval <= this.options.maxSampleMs) this.addSample(interval);
    }
    this.lastMs = nowMs;
  }

  /** Milliseconds since the last advance (0 before any). */
  silenceMs(nowMs: number): number {
    return this.lastMs === undefined ? 0 : Math.max(0, nowMs - this.lastMs);
  }

  meanMs(): number {
    const mean = this.samples.length === 0 ? this.options.minMeanMs : this.sum / this.samples.length;
    return Math.min(this.options.maxMeanMs, Math.max(this.options.minMeanMs, mean));
  }

  phi(nowMs: number): number {
    return (this.silenceMs(nowMs) / this.meanMs()) * log10e;
  }

  /** Silence after which phi crosses `threshold` at the current mean. */
  silenceForPhiMs(threshold: number): number {
    return (threshold / log10e) * this.meanMs();
  }

  private addSample(interval: number): void {
    if (this.samples.length < this.options.windowSize) {
      this.samples.push(interval);
    } else {
      this.sum -= this.samples[this.next] as number;
      this.samples[this.next] = interval;
      this.next = (this.next + 1) % this.options.windowSize;
    }
    this.sum += interval;
  }
}
