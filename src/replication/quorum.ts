/**
 * Consistency levels turned into counts, and the wait for enough replicas.
 * A level names how many of a key's N home replicas must answer; under
 * `local_quorum` only replicas in the coordinator's data center count.
 */
import type { Clock, NodeId, Timer } from '../core/index.ts';
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
 * Counts a request's replica answers until `rule.required` counting ones
 * succeeded, success became impossible (UnavailableError) or the deadline
 * passed (TimeoutError); both messages say how many answered of how many
 * were needed. Callers report each replica with `ack` (or a subclass's
 * `succeed`) or `fail`, straight from their own reactions: no promise per
 * replica. Answers after it settled are ignored (replication continues in
 * the background). Subclasses say what they wait for and how they settle:
 * QuorumWait (a promise of the answers) and the coordinator's write in
 * flight (one object per write).
 */
export abstract class QuorumCount implements Expiring {
  /** Told of every answer, before it is counted (diagnostics). */
  observer: ((owner: NodeId) => void) | undefined;
  abstract readonly deadlineMs: number;
  deadlineSlot = -1;
  private counted = 0;
  private errors: string[] | undefined;
  private sawTimeout = false;
  private done = false;

  /** `possible`: how many counting replicas will answer at most. */
  protected constructor(
    protected readonly rule: QuorumRule,
    private possible: number,
    readonly timeoutMs: number,
  ) {}

  /** What is waited for, for the error messages ("put key 'a'"). */
  protected abstract what(): string;
  /** Stops the deadline: the count settled before it. */
  protected abstract stop(): void;
  protected abstract resolved(): void;
  protected abstract rejected(error: Error): void;

  /** A replica acknowledged (a write: no value to keep). */
  ack(owner: NodeId): void {
    this.observer?.(owner);
    if (this.rule.counts(owner)) this.counted++;
    this.check();
  }

  fail(owner: NodeId, error: unknown): void {
    this.observer?.(owner);
    if (this.rule.counts(owner)) this.possible--;
    if (error instanceof TimeoutError) this.sawTimeout = true;
    (this.errors ??= []).push(`${owner}: ${error instanceof Error ? error.message : String(error)}`);
    this.check();
  }

  /** The deadline passed (DeadlineSet or a timer of the subclass's own). */
  expire(): void {
    if (this.done) return;
    this.done = true;
    this.rejected(new TimeoutError(`Cannot ${this.what()} at consistency ${this.rule.label}: ${this.counted} of ${this.rule.required} required replicas answered within ${this.timeoutMs} ms`));
  }

  /** Settles once enough counted, or too few can: subclasses call it after each answer and once constructed. */
  protected check(): void {
    if (this.done) return;
    const { rule } = this;
    if (this.counted >= rule.required) {
      this.done = true;
      this.stop();
      this.resolved();
    } else if (this.possible < rule.required) {
      this.done = true;
      this.stop();
      const why = this.errors !== undefined ? ` (${this.errors.slice(0, 3).join('; ')})` : '';
      // Replicas that timed out may still apply the write: say it timed out, not that it was refused.
      if (this.sawTimeout) {
        this.rejected(new TimeoutError(`Cannot ${this.what()} at consistency ${rule.label}: ${this.counted} of ${rule.required} required replicas answered within ${this.timeoutMs} ms${why}`));
        return;
      }
      this.rejected(new UnavailableError(`Cannot ${this.what()} at consistency ${rule.label}: ${this.counted} of ${rule.required} required replicas answered${why}`, { answered: this.counted, required: rule.required }));
    }
  }
}

/** QuorumCount whose `promise` resolves with the successful answers. */
export class QuorumWait<T> extends QuorumCount {
  /** Successful answers with a value (`succeed`), in arrival order; counting or not. */
  readonly answers: Array<{ owner: NodeId; value: T }> = [];
  readonly promise: Promise<GatherResult<T>>;
  readonly deadlineMs: number;
  private resolveWait!: (result: GatherResult<T>) => void;
  private rejectWait!: (error: Error) => void;
  /** Its own timer, or undefined when `deadlines` keeps the deadline. */
  private readonly timer: Timer | undefined;

  /** `deadlines`: the set that times this wait out (else a timer of its own). */
  constructor(
    rule: QuorumRule,
    possible: number,
    clock: Clock,
    timeoutMs: number,
    // Built only for a failure: describing the key costs more than a successful wait's bookkeeping.
    private readonly describe: string | (() => string),
    private readonly deadlines?: DeadlineSet,
  ) {
    super(rule, possible, timeoutMs);
    this.promise = new Promise<GatherResult<T>>((resolve, reject) => {
      this.resolveWait = resolve;
      this.rejectWait = reject;
    });
    this.deadlineMs = clock.nowMs() + timeoutMs;
    if (deadlines === undefined) this.timer = clock.setTimer(timeoutMs, () => this.expire());
    else deadlines.add(this);
    this.check();
  }

  /** A replica answered with `value`. */
  succeed(owner: NodeId, value: T): void {
    this.answers.push({ owner, value });
    this.ack(owner);
  }

  protected what(): string {
    return typeof this.describe === 'string' ? this.describe : this.describe();
  }

  protected stop(): void {
    this.timer?.cancel();
    this.deadlines?.delete(this);
  }

  protected resolved(): void {
    this.resolveWait({ answers: this.answers });
  }

  protected rejected(error: Error): void {
    this.rejectWait(error);
  }
}

/**
 * Waits until `rule.required` counting attempts succeed (QuorumWait over
 * attempts given as promises of outcomes).
 * Attempts keep running after it settles (replication continues in the background).
 */
export function gather<T>(
  attempts: ReadonlyArray<Attempt<T>>,
  rule: QuorumRule,
  clock: Clock,
  timeoutMs: number,
  describe: string | (() => string),
): Promise<GatherResult<T>> {
  let possible = 0;
  for (const a of attempts) if (rule.counts(a.owner)) possible++;
  const wait = new QuorumWait<T>(rule, possible, clock, timeoutMs, describe);
  for (const attempt of attempts) {
    void attempt.outcome.then((outcome) => {
      if (outcome.ok) wait.succeed(attempt.owner, outcome.value);
      else wait.fail(attempt.owner, outcome.error);
    });
  }
  return wait.promise;
}

/** Turns a promise into an Outcome that never rejects. */
export function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Something a DeadlineSet calls once when its deadline has passed. */
export interface Expiring {
  readonly deadlineMs: number;
  /** Where the DeadlineSet holding it keeps it; -1 when none does (the set's own field: start it at -1). */
  deadlineSlot: number;
  expire(): void;
}

/**
 * Deadlines of many in-flight requests on one timer, armed for the earliest,
 * instead of a timer per request (one per write's quorum wait, one per
 * read's retry delay: creating and cancelling a timer costs about as much as
 * the bookkeeping it guards). Items that finish are deleted; a sweep expires
 * those due and re-arms for the next.
 *
 * Why an array with each item's slot in the item, not a Set: a Set under an
 * add and a delete per request rebuilds its hash table every few dozen
 * requests, and V8 links each replaced table, entries and all, to its
 * successor (for live iterators). Once one of them is promoted, that chain
 * keeps every later table, and the requests in them with all they
 * reference, alive through young-generation collections. While this was a
 * Set and the store's PendingMap a Map, each cluster node promoted 1.1–1.4
 * MB per scavenge (about all that survived the one before) and its
 * scavenges took 5.7–7.7 ms; with both arrays, 0.17–0.21 MB and 3–5 ms
 * (bench/RESULTS.md, cluster, session 10). A swap-remove in a plain array
 * allocates nothing.
 */
export class DeadlineSet {
  private readonly items: Expiring[] = [];
  private timer: Timer | undefined;
  private timerAtMs = Infinity;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.items.length;
  }

  add(item: Expiring): void {
    if (item.deadlineSlot >= 0) return;
    item.deadlineSlot = this.items.length;
    this.items.push(item);
    if (item.deadlineMs < this.timerAtMs) this.arm(item.deadlineMs);
  }

  /** The item finished: it will not expire. (The timer stays; a sweep with nothing due re-arms or stops.) */
  delete(item: Expiring): void {
    const slot = item.deadlineSlot;
    const items = this.items;
    if (slot < 0 || items[slot] !== item) return;
    const last = items.pop() as Expiring;
    if (last !== item) {
      items[slot] = last;
      last.deadlineSlot = slot;
    }
    item.deadlineSlot = -1;
  }

  private arm(atMs: number): void {
    this.timer?.cancel();
    this.timerAtMs = atMs;
    this.timer = this.clock.setTimer(Math.max(0, atMs - this.clock.nowMs()), () => this.sweep());
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAtMs = Infinity;
    const now = this.clock.nowMs();
    let next = Infinity;
    let due: Expiring[] | undefined;
    for (const item of this.items) {
      if (item.deadlineMs <= now) (due ??= []).push(item);
      else if (item.deadlineMs < next) next = item.deadlineMs;
    }
    if (due !== undefined) for (const item of due) this.delete(item);
    if (next !== Infinity) this.arm(next);
    // After the set is consistent and re-armed: an expiry may add or delete items.
    if (due !== undefined) for (const item of due) item.expire();
  }
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
        // The bucket's geometric middle: its upper bound would put the figure
        // up to 25 % above the percentile, and a retry delay that late fires
        // for barely 1 % of reads instead of 5 %.
        this.current = i === 0 ? latencyBucketFirstMs : latencyBucketFirstMs * latencyBucketGrowth ** (i - 0.5);
        break;
      }
    }
    for (let i = 0; i < latencyBuckets; i++) this.counts[i] = (this.counts[i] ?? 0) >>> 1;
  }
}
