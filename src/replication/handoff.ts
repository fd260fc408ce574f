/**
 * Hinted handoff (Dynamo §4.6). A write meant for a replica that is down or did
 * not answer is kept as a durable hint naming the owner; when the owner is seen
 * up again the hints are replayed to it as ordinary kv.apply messages (merging
 * is idempotent, so a replay seen twice is harmless) and deleted once acked.
 * Replay is rate limited (hintReplayRatePerSec) so a node coming back is not
 * flooded by every peer at once, the hint storm Cassandra and Scylla warn about.
 *
 * A hint older than maxHintAgeMs is dropped, not replayed (Cassandra's hint
 * window): once the tombstones that superseded it may have been purged, its
 * replay would bring deleted data back. A hint the owner refuses for what it
 * is (not for being busy or away) is dropped too, so it cannot hold up the
 * destination's queue for ever.
 */
import type { Clock, Logger, NodeId, Timer, Transport } from '../core/index.ts';
import { ClosedError, ConflictError, CorruptionError, InvalidArgumentError, describeKey } from '../core/index.ts';
import type { ApplyRequest } from './messages.ts';
import type { NodeLiveness } from './placement.ts';
import { defaultTombstoneGraceMs } from './replica-store.ts';

/** One queued hint as the queue hands it back. */
export interface QueuedHint {
  /** Position in the destination's queue; acknowledging it drops it and everything before. */
  readonly seq: number;
  readonly key: Uint8Array;
  /** The encoded object to apply at the owner. */
  readonly object: Uint8Array;
}

export interface HintBacklog {
  hints: number;
  bytes: number;
}

/**
 * The durable per-destination queue handoff needs. HintStore (hint-store.ts)
 * provides it through an adapter in cluster-kv.ts; tests may use a memory queue.
 */
export interface HintQueue {
  /**
   * Appends durably; throws OverloadedError when the destination's backlog is
   * full. `linger`, when given, is awaited before a sync is started, so that
   * appends made meanwhile share it.
   */
  append(target: NodeId, key: Uint8Array, object: Uint8Array, linger?: Promise<void>): Promise<void>;
  /** Up to `max` oldest hints for `target`, oldest first. */
  peek(target: NodeId, max: number): Promise<QueuedHint[]>;
  /** Drops every hint of `target` up to and including `seq`. */
  acknowledge(target: NodeId, seq: number): Promise<void>;
  /** Destinations that have a backlog. */
  destinations(): NodeId[];
  backlog(target: NodeId): HintBacklog;
  /** Drops every hint (FLUSHALL). */
  clear(): Promise<void>;
}

/** Hints replayed per second per node, across all destinations. */
export const defaultHintReplayRatePerSec = 500;
/** How often destinations with a backlog are retried even without a liveness change. */
export const defaultHintReplayIntervalMs = 1000;
/** Hints read from the queue per batch. */
export const hintReplayBatchHints = 64;
/**
 * How often the queues of destinations that are down are cleared of hints
 * past the maximum age. Without it a node down longer than that age keeps a
 * backlog full of hints that will only be dropped on its return, and the
 * backlog limit refuses the newer hints that would still be replayed.
 */
export const hintExpirySweepIntervalMs = 60_000;
/** Time a replayed hint may take to be acknowledged. */
export const defaultHintApplyTimeoutMs = 2000;

/**
 * A hint kept by the coordinator for itself (it counts towards no quorum, so
 * no reply waits on it) waits this long before its fdatasync, so the hints
 * of the next few milliseconds share one: one-down, every write leaves a
 * hint, and an fdatasync cost ~115 µs of CPU on the benchmark machine.
 */
export const defaultHintSyncLingerMs = 10;

/**
 * The hint age handoff enforces: the one given, else half the tombstone
 * grace period. A hint is safe to replay while every tombstone that could
 * supersede it is still kept (each is younger than the hint's oldest value);
 * the other half covers clock skew between nodes and a replay's own delay.
 * Never the grace period or more, where a replayed hint could outlive the
 * tombstones that superseded it.
 */
export function maxHintAgeFor(store: { readonly tombstoneGraceMs: number }, options: Pick<HandoffOptions, 'maxHintAgeMs'> = {}): number {
  const graceMs = store.tombstoneGraceMs;
  const maxAgeMs = options.maxHintAgeMs ?? Math.floor(graceMs / 2);
  if (maxAgeMs >= graceMs) {
    throw new InvalidArgumentError(
      `The maximum hint age (${maxAgeMs} ms) must be below the tombstone grace period (${graceMs} ms): a hint replayed after the tombstones that superseded it were purged brings deleted data back`,
    );
  }
  return maxAgeMs;
}

/** maxHintAgeFor the default grace period; createClusterKv uses the store's own. */
export const defaultMaxHintAgeMs = maxHintAgeFor({ tombstoneGraceMs: defaultTombstoneGraceMs });

export interface HandoffOptions {
  /** See defaultHintSyncLingerMs; 0 syncs at once. */
  hintSyncLingerMs?: number;
  hintReplayRatePerSec?: number;
  hintReplayIntervalMs?: number;
  hintApplyTimeoutMs?: number;
  /**
   * Hints whose oldest value or counter version is older than this are
   * dropped unreplayed (hints of tombstones alone are always replayed)
   * (see defaultMaxHintAgeMs); it must be below the replica store's
   * tombstone grace period, which createClusterKv checks.
   */
  maxHintAgeMs?: number;
}

/**
 * True for an error that says the owner will never take this hint as it is
 * (an argument it refuses, a merge past its limits), as opposed to not
 * taking it now. A closed list: an error not on it keeps the hint, since
 * dropping one loses a write for good while retrying only waits. Not
 * CorruptionError: from the owner it may concern the owner's own stored
 * copy; a hint whose own bytes are bad is caught here, before sending.
 */
export function refusesHint(error: unknown): boolean {
  return error instanceof InvalidArgumentError || error instanceof ConflictError;
}

export interface HandoffStats {
  /** Hints waiting, per destination. */
  backlog: Record<NodeId, HintBacklog>;
  stored: number;
  /** Hints refused because a destination's backlog was full. */
  refused: number;
  replayed: number;
  replayFailures: number;
  /** Hints dropped unreplayed because they were older than maxHintAgeMs. */
  expired: number;
  /** Hints dropped because the owner refused them for what they hold (refusesHint). */
  rejected: number;
}

export class HintedHandoff {
  private readonly ratePerSec: number;
  private readonly intervalMs: number;
  private readonly applyTimeoutMs: number;
  private readonly syncLingerMs: number;
  readonly maxHintAgeMs: number;
  /** The current linger window: lazy hints appended before it ends share one sync. */
  private linger: Promise<void> | undefined;
  private readonly replaying = new Map<NodeId, Promise<void>>();
  /** Sweeps of expired hints while a destination is down (expireWhileDown). */
  private readonly sweeping = new Map<NodeId, Promise<void>>();
  private tokens: number;
  private tokensAtMs: number;
  private timer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;
  /** When the queues of down destinations were last cleared of expired hints (hintExpirySweepIntervalMs). */
  private lastExpirySweepMs = -Infinity;
  private closed = false;
  private readonly counters = { stored: 0, refused: 0, replayed: 0, replayFailures: 0, expired: 0, rejected: 0 };

  constructor(
    private readonly deps: {
      localId: NodeId;
      clock: Clock;
      transport: Transport;
      liveness: NodeLiveness;
      queue: HintQueue;
      log: Logger;
      /**
       * The wall-clock time (ms) of the oldest value or counter version in
       * an encoded object, or undefined when it holds only tombstones;
       * throws CorruptionError for bad bytes. A hint's age is measured from
       * it (hints record no time of their own): the oldest value is the one a
       * purged tombstone could no longer stop.
       */
      oldestValueMs: (object: Uint8Array) => number | undefined;
    },
    options: HandoffOptions = {},
  ) {
    this.ratePerSec = options.hintReplayRatePerSec ?? defaultHintReplayRatePerSec;
    this.intervalMs = options.hintReplayIntervalMs ?? defaultHintReplayIntervalMs;
    this.applyTimeoutMs = options.hintApplyTimeoutMs ?? defaultHintApplyTimeoutMs;
    this.syncLingerMs = options.hintSyncLingerMs ?? defaultHintSyncLingerMs;
    this.maxHintAgeMs = options.maxHintAgeMs ?? defaultMaxHintAgeMs;
    if (!(this.maxHintAgeMs > 0)) throw new InvalidArgumentError(`The maximum hint age must be a positive number of ms, got ${this.maxHintAgeMs}`);
    // Start with one second's budget, not more: a burst is what the limit is for.
    this.tokens = Math.max(1, this.ratePerSec);
    this.tokensAtMs = deps.clock.nowMs();
  }

  start(): void {
    this.unsubscribe = this.deps.liveness.onChange((node, up) => {
      if (up) this.kick(node);
    });
    this.schedule();
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.unsubscribe?.();
    await Promise.allSettled([...this.replaying.values(), ...this.sweeping.values()]);
  }

  /**
   * Keeps `object` for `target` until it can be delivered; resolves once the
   * hint is durable. `lazy`: nothing waits on it for a reply (a hint the
   * coordinator keeps for itself), so its sync may linger to batch.
   */
  async store(target: NodeId, key: Uint8Array, object: Uint8Array, options: { lazy?: boolean } = {}): Promise<void> {
    if (this.closed) throw new ClosedError('Hinted handoff is stopped');
    try {
      await this.deps.queue.append(target, key, object, options.lazy === true ? this.lingerWindow() : undefined);
      this.counters.stored++;
    } catch (error) {
      this.counters.refused++;
      throw error;
    }
  }

  private lingerWindow(): Promise<void> | undefined {
    if (this.syncLingerMs <= 0) return undefined;
    this.linger ??= this.deps.clock.sleep(this.syncLingerMs).then(() => {
      this.linger = undefined;
    });
    return this.linger;
  }

  /** Drops every hint (FLUSHALL). */
  async clear(): Promise<void> {
    await this.deps.queue.clear();
  }

  stats(): HandoffStats {
    const backlog: Record<NodeId, HintBacklog> = {};
    for (const node of this.deps.queue.destinations()) backlog[node] = this.deps.queue.backlog(node);
    return { backlog, ...this.counters };
  }

  /** Total hints waiting for every destination. */
  pendingHints(): number {
    let total = 0;
    for (const node of this.deps.queue.destinations()) total += this.deps.queue.backlog(node).hints;
    return total;
  }

  /** Replays `target`'s hints now if it is up (one replay per destination at a time). */
  kick(target: NodeId): Promise<void> {
    // A sweep of expired hints finishes first; the replay starts right after it, not a tick later.
    const sweeping = this.sweeping.get(target);
    if (sweeping !== undefined) return sweeping.then(() => this.kick(target));
    const running = this.replaying.get(target);
    if (running !== undefined) return running;
    if (this.closed || target === this.deps.localId || !this.deps.liveness.isUp(target)) return Promise.resolve();
    if (this.deps.queue.backlog(target).hints === 0) return Promise.resolve();
    const run = this.replay(target)
      .catch((error: unknown) => {
        // A failing hint disk must not take the node down; the hints stay queued for the next tick.
        this.counters.replayFailures++;
        this.deps.log.warn('hint replay stopped', { target, error });
      })
      .finally(() => this.replaying.delete(target));
    this.replaying.set(target, run);
    return run;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.deps.clock.setTimer(this.intervalMs, () => {
      const sweep = this.deps.clock.nowMs() - this.lastExpirySweepMs >= hintExpirySweepIntervalMs;
      if (sweep) this.lastExpirySweepMs = this.deps.clock.nowMs();
      for (const node of this.deps.queue.destinations()) {
        if (this.deps.liveness.isUp(node)) void this.kick(node);
        else if (sweep) void this.expireWhileDown(node);
      }
      this.schedule();
    });
  }

  /**
   * Drops the expired hints at the head of a down destination's queue (the
   * oldest: the queue is in write order), as replay would on its return.
   * Never beside a replay of the same destination: both acknowledge from the
   * head of its queue.
   */
  expireWhileDown(target: NodeId): Promise<void> {
    const running = this.sweeping.get(target) ?? this.replaying.get(target);
    if (running !== undefined) return running;
    if (this.closed || this.deps.queue.backlog(target).hints === 0) return Promise.resolve();
    const run = (async () => {
      for (;;) {
        const batch = await this.deps.queue.peek(target, hintReplayBatchHints);
        let droppedUpTo: number | undefined;
        let expired = 0;
        for (const hint of batch) {
          const verdict = this.judge(target, hint);
          if (verdict === 'send') break;
          if (verdict === 'expired') expired++;
          droppedUpTo = hint.seq;
        }
        if (droppedUpTo === undefined || this.closed) return;
        await this.deps.queue.acknowledge(target, droppedUpTo);
        this.noteExpired(target, expired, 'hints older than the maximum hint age dropped while their owner is down');
        if (droppedUpTo !== batch[batch.length - 1]?.seq) return;
      }
    })()
      .catch((error: unknown) => this.deps.log.warn('dropping expired hints failed', { target, error }))
      .finally(() => this.sweeping.delete(target));
    this.sweeping.set(target, run);
    return run;
  }

  private async replay(target: NodeId): Promise<void> {
    let headSeq: number | undefined;
    while (!this.closed && this.deps.liveness.isUp(target)) {
      const batch = await this.deps.queue.peek(target, hintReplayBatchHints);
      if (batch.length === 0) return;
      // A batch that did not move the queue's head would be sent again at once: wait for the next tick instead.
      if (batch[0]?.seq === headSeq) return;
      headSeq = batch[0]?.seq;
      if (!(await this.replayBatch(target, batch))) return;
    }
  }

  /** Sends one batch in order; false when replay should stop (owner unreachable, or closing). */
  private async replayBatch(target: NodeId, batch: readonly QueuedHint[]): Promise<boolean> {
    // Dropped hints are acknowledged together: by the next delivered hint's
    // ack (acknowledgements are cumulative), else when the batch stops.
    let droppedUpTo: number | undefined;
    let expired = 0;
    let goOn = true;
    for (const hint of batch) {
      const verdict = this.judge(target, hint);
      if (verdict === 'expired') expired++;
      if (verdict !== 'send') {
        droppedUpTo = hint.seq;
        continue;
      }
      await this.takeToken();
      if (this.closed) {
        goOn = false;
        break;
      }
      const message: ApplyRequest = { type: 'kv.apply', key: hint.key, object: hint.object, hintFor: null };
      try {
        await this.deps.transport.request(target, message, this.applyTimeoutMs);
      } catch (error) {
        if (refusesHint(error)) {
          this.counters.rejected++;
          this.deps.log.warn('hint dropped: its owner refused it', { target, key: describeKey(hint.key), error });
          droppedUpTo = hint.seq;
          continue;
        }
        // The owner is not reachable after all: keep the hint, retry on the next tick.
        this.counters.replayFailures++;
        this.deps.log.debug('hint replay failed', { target, error });
        goOn = false;
        break;
      }
      await this.deps.queue.acknowledge(target, hint.seq);
      droppedUpTo = undefined;
      this.counters.replayed++;
    }
    this.noteExpired(target, expired, 'hints older than the maximum hint age dropped unreplayed; the owner misses those writes until they are written or repaired again');
    // Left unacknowledged, dropped hints would be judged (and a refused one sent) again.
    if (droppedUpTo !== undefined) await this.deps.queue.acknowledge(target, droppedUpTo);
    return goOn;
  }

  /** Counts hints dropped as too old, with one warning per batch. */
  private noteExpired(target: NodeId, hints: number, message: string): void {
    if (hints === 0) return;
    this.counters.expired += hints;
    this.deps.log.warn(message, { target, hints, maxHintAgeMs: this.maxHintAgeMs });
  }

  /**
   * Whether a hint is sent, or dropped as too old to replay safely, or as
   * unreadable (the owner would refuse its bytes just the same).
   */
  private judge(target: NodeId, hint: QueuedHint): 'send' | 'expired' | 'rejected' {
    let oldestMs: number | undefined;
    try {
      oldestMs = this.deps.oldestValueMs(hint.object);
    } catch (error) {
      if (!(error instanceof CorruptionError)) throw error;
      this.counters.rejected++;
      this.deps.log.warn('hint dropped: its object does not decode', { target, key: describeKey(hint.key), error });
      return 'rejected';
    }
    // Tombstones alone cannot bring anything back, and a delete the owner
    // misses is what would: they are replayed however old.
    if (oldestMs === undefined || this.deps.clock.wallMs() - oldestMs <= this.maxHintAgeMs) return 'send';
    return 'expired';
  }

  /** Token bucket on the injected clock: waits until one replay is allowed. */
  private async takeToken(): Promise<void> {
    for (;;) {
      const now = this.deps.clock.nowMs();
      this.tokens = Math.min(Math.max(1, this.ratePerSec), this.tokens + ((now - this.tokensAtMs) * this.ratePerSec) / 1000);
      this.tokensAtMs = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.deps.clock.sleep(Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSec));
    }
  }
}
