/**
 * Consistency levels turned into counts, and the wait for enough replicas.
 * A level names how many of a key's N home replicas must answer; under
 * `local_quorum` only replicas in the coordinator's data center count.
 */
import type { Clock, NodeId } from '../core/index.ts';
import { InvalidArgumentError, TimeoutError, UnavailableError } from '../core/index.ts';
import type { Consistency } from './api.ts';

export interface QuorumRule {
  /** Answers needed. */
  readonly required: number;
  /** Whether an answer on behalf of this home replica counts towards `required`. */
  counts(owner: NodeId): boolean;
  /** The level as the user wrote it, for messages ("quorum", "2"). */
  readonly label: string;
}

export function describeConsistency(level: Consistency): string {
  return typeof level === 'number' ? String(level) : level;
}

/**
 * The rule for `level` over the home replicas `home` (N = home.length).
 * `dcOf` and `localDc` are used by local_quorum only.
 */
export function quorumRule(
  level: Consistency,
  home: readonly NodeId[],
  localDc: string | undefined,
  dcOf: (node: NodeId) => string | undefined,
): QuorumRule {
  const n = home.length;
  const label = describeConsistency(level);
  const everyone = (): boolean => true;
  if (typeof level === 'number') {
    if (!Number.isInteger(level) || level < 1) throw new InvalidArgumentError(`Cannot use ${level} as a consistency level: use one, quorum, all, local_quorum or an integer from 1 to N`);
    if (level > n) throw new InvalidArgumentError(`Cannot ask for ${level} replicas: the key has N = ${n}`);
    return { required: level, counts: everyone, label };
  }
  switch (level) {
    case 'one':
      return { required: 1, counts: everyone, label };
    case 'quorum':
      return { required: Math.floor(n / 2) + 1, counts: everyone, label };
    case 'all':
      return { required: n, counts: everyone, label };
    case 'local_quorum': {
      if (localDc === undefined) throw new InvalidArgumentError('Cannot use local_quorum: this node does not know its data center (set dc in its configuration)');
      const local = home.filter((node) => dcOf(node) === localDc);
      if (local.length === 0) {
        throw new UnavailableError(`Cannot reach local_quorum: none of the ${n} replicas of the key is in data center "${localDc}"`, { answered: 0, required: 1 });
      }
      const localSet = new Set(local);
      return { required: Math.floor(local.length / 2) + 1, counts: (owner) => localSet.has(owner), label };
    }
    default:
      throw new InvalidArgumentError(`Unknown consistency level "${String(level)}": use one, quorum, all, local_quorum or an integer`);
  }
}

/** One replica's outcome as the wait sees it. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface Attempt<T> {
  readonly owner: NodeId;
  readonly outcome: Promise<Outcome<T>>;
}

export interface GatherResult<T> {
  /** Successful answers that counted, in arrival order. */
  readonly answers: Array<{ owner: NodeId; value: T }>;
}

/**
 * Waits until `rule.required` counting attempts succeed. Rejects with
 * UnavailableError as soon as success is impossible, or TimeoutError at the
 * deadline; both messages say how many answered of how many were needed.
 * Attempts keep running after it settles (replication continues in the background).
 */
export function gather<T>(
  attempts: ReadonlyArray<Attempt<T>>,
  rule: QuorumRule,
  clock: Clock,
  timeoutMs: number,
  describe: string | (() => string),
): Promise<GatherResult<T>> {
  return new Promise((resolve, reject) => {
    // Built only for a failure: describing the key costs more than a successful gather's bookkeeping.
    const what = (): string => (typeof describe === 'string' ? describe : describe());
    const answers: Array<{ owner: NodeId; value: T }> = [];
    let counted = 0;
    let possible = 0;
    for (const a of attempts) if (rule.counts(a.owner)) possible++;
    const errors: string[] = [];
    let sawTimeout = false;
    let done = false;
    const timer = clock.setTimer(timeoutMs, () => {
      if (done) return;
      done = true;
      reject(new TimeoutError(`Cannot ${what()} at consistency ${rule.label}: ${counted} of ${rule.required} required replicas answered within ${timeoutMs} ms`));
    });
    const check = (): void => {
      if (done) return;
      if (counted >= rule.required) {
        done = true;
        timer.cancel();
        resolve({ answers });
      } else if (possible < rule.required) {
        done = true;
        timer.cancel();
        const why = errors.length > 0 ? ` (${errors.slice(0, 3).join('; ')})` : '';
        // Replicas that timed out may still apply the write: say it timed out, not that it was refused.
        if (sawTimeout) {
          reject(new TimeoutError(`Cannot ${what()} at consistency ${rule.label}: ${counted} of ${rule.required} required replicas answered within ${timeoutMs} ms${why}`));
          return;
        }
        reject(new UnavailableError(`Cannot ${what()} at consistency ${rule.label}: ${counted} of ${rule.required} required replicas answered${why}`, { answered: counted, required: rule.required }));
      }
    };
    for (const attempt of attempts) {
      const counts = rule.counts(attempt.owner);
      void attempt.outcome.then((outcome) => {
        if (outcome.ok) {
          answers.push({ owner: attempt.owner, value: outcome.value });
          if (counts) counted++;
        } else {
          if (counts) possible--;
          if (outcome.error instanceof TimeoutError) sawTimeout = true;
          errors.push(`${attempt.owner}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`);
        }
        check();
      });
    }
    check();
  });
}

/** Turns a promise into an Outcome that never rejects. */
export function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Bucket bounds grow by this factor: a percentile is known to within 25 %, plenty for a delay. */
const latencyBucketGrowth = 1.25;
const latencyBucketFirstMs = 0.25;
/** 0.25 ms × 1.25^40 ≈ 1.8 s: past any delay worth waiting for. */
const latencyBuckets = 41;
const logGrowth = Math.log(latencyBucketGrowth);

/**
 * A running percentile of recent latencies, for a speculative retry's delay
 * (Cassandra's `speculative_retry = 95p`): O(1) per sample, recomputed every
 * `windowSamples`, when the counts are also halved so that the figure follows
 * the last few windows rather than the whole run.
 */
export class LatencyPercentile {
  private readonly counts = new Uint32Array(latencyBuckets);
  private samples = 0;
  private current: number;

  constructor(
    private readonly fraction: number,
    initialMs: number,
    private readonly windowSamples = 256,
  ) {
    if (!(fraction > 0 && fraction < 1)) throw new InvalidArgumentError(`A latency percentile must be between 0 and 1 exclusive, got ${fraction}`);
    this.current = initialMs;
  }

  /** The percentile of the samples up to the last recomputation (the initial value before the first). */
  get valueMs(): number {
    return this.current;
  }

  record(ms: number): void {
    const i = ms <= latencyBucketFirstMs ? 0 : Math.min(latencyBuckets - 1, Math.ceil(Math.log(ms / latencyBucketFirstMs) / logGrowth));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    if (++this.samples >= this.windowSamples) this.recompute();
  }

  private recompute(): void {
    this.samples = 0;
    let total = 0;
    for (const c of this.counts) total += c;
    const rank = Math.ceil(total * this.fraction);
    let seen = 0;
    for (let i = 0; i < latencyBuckets; i++) {
      const c = this.counts[i] ?? 0;
      seen += c;
      if (seen >= rank) {
        this.current = latencyBucketFirstMs * latencyBucketGrowth ** i;
        break;
      }
    }
    for (let i = 0; i < latencyBuckets; i++) this.counts[i] = (this.counts[i] ?? 0) >>> 1;
  }
}
