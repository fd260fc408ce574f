/**
 * The request coordinator (Dynamo §4.5): any node accepts any request. A
 * write is forwarded to one of the key's home replicas, which advances the
 * vector clock with its own id, stores the result locally first, sends it to
 * the other replicas and answers after W acknowledgements. A read asks the
 * home replicas, answers after R, merges (dominated versions drop out,
 * concurrent ones stay as siblings) and repairs stale replicas afterwards.
 *
 * The coordinator is generic over the object type `O` so it depends only on
 * the two small interfaces below; cluster-kv.ts binds them to ReplicaStore
 * and the versioned object codec.
 */
import type { Clock, Logger, MessageHandler, NodeId, Random, ReplyListener, Transport, WireMessage } from '../core/index.ts';
import { ClosedError, InvalidArgumentError, OverloadedError, ProtocolError, TimeoutError, UnavailableError, describeKey, isRingkvError } from '../core/index.ts';
import type { Consistency, DurabilityListener, DurableLater, DurableNow, WouldWait } from './api.ts';
import { ReplicaBehindError, durableNow, wouldWait } from './api.ts';
import type { HintedHandoff } from './handoff.ts';
import {
  kvAck,
  parseCoordinateReply,
  parseKvRequest,
  parseReadReply,
  type ApplyRequest,
  type CoordinateKind,
  type CoordinateReply,
  type CoordinateRequest,
  type KvRequest,
  type ReadReply,
  type ReadRequest,
  toWireError,
} from './messages.ts';
import type { NodeLiveness, Placement, PreferenceList } from './placement.ts';
import { replicasForN, type NamespaceReplication } from './placement.ts';
import { DeadlineSet, LatencyPercentile, QuorumCount, gather, quorumRule, settle, type Attempt, type Expiring, type GatherResult, type Outcome, type QuorumRule } from './quorum.ts';
import { ReadRepairer } from './read-repair.ts';
import { slotOf } from './keys.ts';
import { KeyspaceOps, maxScanCount, type ScanPosition } from './keyspace.ts';

// ---------------------------------------------------------------- limits

/** Default time a client request may take before it fails with TimeoutError. */
export const defaultCoordinatorTimeoutMs = 2000;
/** Extra time a forwarding node waits beyond the coordinator's own timeout. */
export const forwardMarginMs = 500;
/** Requests outstanding to one peer before further ones fail fast with OverloadedError. */
export const defaultMaxInFlightPerPeer = 1024;
/** Forwarded operation ids remembered to apply a duplicated message once. */
export const maxRememberedOps = 8192;
/** Replicas asked beyond R on a read before any answer is missing (more: fewer slow tails, more CPU per read). */
export const defaultExtraReads = 0;
/**
 * A peer the transport just called unreachable is treated as down for this
 * long (reads skip it, writes hint for it), however alive the failure detector
 * still thinks it: detection takes seconds, and meanwhile every request would
 * wait for a refusal. A success clears it sooner.
 */
export const unreachableSuspectMs = 1000;
/** A read still short of R answers after this long asks the replicas it held back. */
export const defaultReadSpeculateMs = 250;
/**
 * A pair read whose peer is slower than this fraction of recent peer reads
 * asks a spare peer too (speculative retry): ~5 % more read requests, for a
 * read tail bounded by about this percentile plus one more round trip.
 */
export const defaultReadRetryPercentile = 0.95;
/** The spare is never asked sooner than this: on a quiet machine the percentile can be a fraction of a millisecond. */
export const defaultReadRetryMinMs = 1;

// ---------------------------------------------------------------- what the coordinator builds on

/** A write done at this replica: the whole object now stored, and the write's own causal context. */
export interface LocalWrite<O> {
  object: O;
  context: Uint8Array;
  /**
   * Resolves once the write is on disk here; absent: it already is. The
   * object is decided and ordered before this, so the coordinator sends it to
   * the peers at once and counts its own acknowledgement only on durability:
   * one fsync plus a round trip per write instead of two fsyncs in series.
   */
  durable?: Promise<void>;
  /** `model.encode(object)` when the backend already has it (the bytes it stored): not encoded again for the peers. */
  encoded?: Uint8Array;
  /**
   * Present when `durable` is: tells `listener` once, with `token`, when the
   * write is durable here or failed (never inside the call). The coordinator
   * uses it instead of `durable`, whose promise is then never made.
   */
  whenDurable?(listener: DurabilityListener, token: number): void;
}

/**
 * A node's local replica of the data (ReplicaStore behind an adapter).
 * `context` null supersedes everything this replica holds (as LocalKv and
 * RESP SET do); an encoded empty context supersedes nothing (a blind write).
 */
export interface ReplicaBackend<O> {
  read(key: Uint8Array): Promise<O | undefined>;
  /**
   * `read` answered now, without a promise, or `wouldWait` when the answer
   * needs to wait (then nothing was done). Absent: reads always go through `read`.
   */
  readNow?(key: Uint8Array): O | undefined | WouldWait;
  /**
   * Exactly the model's encoding of `read(key)`, when the backend can give it
   * without decoding (a replica answering kv.read sends the stored bytes).
   * Absent: the coordinator reads and encodes.
   */
  readEncoded?(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Merges `incoming` into the local copy, persists, returns the merged object. Idempotent. `encoded`: `incoming` as it came on the wire. */
  apply(key: Uint8Array, incoming: O, encoded?: Uint8Array): Promise<O>;
  /**
   * `apply(key, model.decode(encoded), encoded)` for a caller that waits only
   * for durability: `durableNow`, `durableLater` with `listener` told once
   * later, or a promise that settles as `apply`'s would. Throws what `apply`
   * would reject with before writing. Absent: kv.apply goes through `apply`.
   */
  applyThen?(key: Uint8Array, encoded: Uint8Array, listener: DurabilityListener, token: number): DurableNow | DurableLater | Promise<unknown>;
  coordinatePut(key: Uint8Array, value: Uint8Array, context: Uint8Array | null, expiresAtMs: number | null, overwrite: boolean): Promise<LocalWrite<O>>;
  /**
   * `coordinatePut` decided now, without a promise, or `wouldWait` having
   * written nothing. Throws what `coordinatePut` would reject with. Absent:
   * puts always go through `coordinatePut`.
   */
  coordinatePutNow?(key: Uint8Array, value: Uint8Array, context: Uint8Array | null, expiresAtMs: number | null, overwrite: boolean): LocalWrite<O> | WouldWait;
  coordinateDelete(key: Uint8Array, context: Uint8Array | null): Promise<LocalWrite<O>>;
  /** `expiresAtMs` undefined keeps the current expiry. */
  coordinateIncr(key: Uint8Array, delta: bigint, expiresAtMs: number | null | undefined): Promise<LocalWrite<O> & { value: bigint }>;
  /** undefined when the key has no live value. */
  coordinateTouch(key: Uint8Array, expiresAtMs: number | null, context: Uint8Array | null): Promise<LocalWrite<O> | undefined>;
  /** Live keys of slots [fromSlot, toSlot) after `after`, in storage order (slot, key); done: none left. */
  scan(fromSlot: number, toSlot: number, after: ScanPosition | null, count: number): Promise<{ entries: ScanPosition[]; done: boolean }>;
  /** Keys held locally (approximate). */
  count(): Promise<number>;
  /** Drops every local key. */
  flush(): Promise<void>;
}

/** What the coordinator needs to know about objects. */
export interface ObjectModel<O> {
  encode(object: O): Uint8Array;
  decode(bytes: Uint8Array): O;
  merge(a: O, b: O): O;
  /** True when `have` already holds everything in `want` (so `have`'s replica needs no repair). */
  covers(have: O | undefined, want: O): boolean;
  /** Whether two objects encode the same (absent: compare their encodings); checked after every read. */
  equal?(a: O, b: O): boolean;
}

export interface CoordinatorOptions {
  coordinatorTimeoutMs?: number;
  maxInFlightPerPeer?: number;
  defaultR?: Consistency;
  defaultW?: Consistency;
  /** N per namespace; absent: the ring's replication factor for every key. */
  replication?: NamespaceReplication;
  /** Data center of this node, for local_quorum (default: the placement's dc of this node). */
  localDc?: string;
  readRepair?: boolean;
  /** Replicas a read asks beyond R at first (default defaultExtraReads); the rest only if those fail or are slow. */
  extraReads?: number;
  /** After this long without R answers a read asks every home replica (default defaultReadSpeculateMs). */
  readSpeculateMs?: number;
  /** A pair read asks a spare peer once its first peer is slower than this fraction of recent ones (default defaultReadRetryPercentile). */
  readRetryPercentile?: number;
  /** ...but never sooner than this (default defaultReadRetryMinMs). */
  readRetryMinMs?: number;
  /** Timings of every operation, for a node's tail diagnostics; absent (the default): no clock reads for them. */
  probe?: CoordinatorProbe;
}

/**
 * Where an operation's time went, measured by the coordinator (all in ms
 * from the moment it started the operation). Diagnostics only: a node wires
 * one when asked to (src/node/tail-diag.ts).
 */
export interface CoordinatorProbe {
  /**
   * A coordinated write reached its quorum after `quorumMs`. `localMs`: when
   * this node's copy was durable; `peerMs`: each peer's ack, in slot order;
   * both undefined for what had not finished by the quorum (it counted no part in it).
   */
  write(quorumMs: number, localMs: number | undefined, peerMs: ReadonlyArray<number | undefined>): void;
  /** A read's peer request (the pair path's one, or the general path as a whole) answered after `ms`. */
  read(totalMs: number, peerMs: number | undefined): void;
  /** This node, as a replica, served a peer's kv.apply in `ms` (receipt to durable). */
  apply(ms: number): void;
}

export interface CoordinatorDeps<O> {
  localId: NodeId;
  clock: Clock;
  random: Random;
  transport: Transport;
  log: Logger;
  placement: Placement;
  liveness: NodeLiveness;
  backend: ReplicaBackend<O>;
  model: ObjectModel<O>;
  /** Absent: no sloppy quorum stand-ins and no hints (writes count home replicas only). */
  handoff?: HintedHandoff;
}

export interface ClientWrite {
  kind: CoordinateKind;
  key: Uint8Array;
  value?: Uint8Array;
  delta?: bigint;
  context?: Uint8Array | null;
  /** put only: supersede everything the coordinating replica holds (WriteOptions.overwrite). */
  overwrite?: boolean;
  /** For put/touch: the expiry to set. For incr: undefined keeps the current expiry. */
  expiresAtMs?: number | null;
  w?: Consistency;
  strict?: boolean;
  timeoutMs?: number;
  /** Data center of the node the client asked (for local_quorum); default this node's. */
  dc?: string;
}

export interface CoordinatedWrite<O> {
  /** Undefined for a write coordinated here as well as a forwarded one: the object is not kept alive across the write's wait. */
  object: O | undefined;
  context: Uint8Array | null;
  count: bigint | null;
  touched: boolean;
}

export interface CoordinatorStats {
  writesCoordinated: number;
  writesForwarded: number;
  reads: number;
  readRepairs: number;
  /** Pair reads that also asked a spare peer (speculative retry). */
  readRetries: number;
  hintsStored: number;
  overloaded: number;
  /** Touches whose coordinating replica had missed versions the client read, and fetched them first. */
  touchCatchUps: number;
}

/** A replica slot in a write: the owner, and the node that stands in for it (itself when healthy). */
interface Slot {
  owner: NodeId;
  node: NodeId;
  /**
   * The owner is down by the failure detector and nothing can stand in: keep
   * the hint at once rather than wait for the dead peer to refuse.
   */
  hintOnly: boolean;
}

interface SlotTrie {
  readonly next: Map<NodeId, SlotTrie>;
  slots: readonly Slot[] | undefined;
}

/** Where a write's peer copies report (the Coordinator). */
interface CopyHost<O> {
  copyAnswered(write: WriteInFlight<O>, slot: Slot): void;
  copyFailed(write: WriteInFlight<O>, slot: Slot, error: unknown): void;
}

/**
 * One write in flight: what every replica copy shares, and the count of
 * their acknowledgements until W (QuorumCount, as QuorumWait for reads). One
 * object per write, completed by the local store's durability callback
 * (DurabilityListener) and the peers' replies, with no async frame or
 * promise chain held across the group commit: what a young-generation
 * collection finds alive is this record, the encoded object and the
 * promise the caller awaits.
 */
class WriteInFlight<O> extends QuorumCount implements DurabilityListener, ReplyListener {
  readonly promise: Promise<CoordinatedWrite<O>>;
  readonly deadlineMs: number;
  private resolveWrite!: (result: CoordinatedWrite<O>) => void;
  private rejectWrite!: (error: Error) => void;
  /** Nodes holding or asked for a copy, built when a first copy fails: a stand-in is taken only once. */
  used: Set<NodeId> | undefined;

  constructor(
    readonly kind: CoordinateKind,
    readonly key: Uint8Array,
    readonly encoded: Uint8Array,
    readonly strict: boolean,
    readonly slots: readonly Slot[],
    /** Stand-in candidates past the preference list, in ring order. */
    readonly fallbacks: readonly NodeId[],
    timeoutMs: number,
    rule: QuorumRule,
    /** How many counting replicas can still answer. */
    possible: number,
    private readonly localId: NodeId,
    private readonly result: CoordinatedWrite<O>,
    private readonly deadlines: DeadlineSet,
    nowMs: number,
    private readonly host: CopyHost<O>,
  ) {
    super(rule, possible, timeoutMs);
    this.promise = new Promise<CoordinatedWrite<O>>((resolve, reject) => {
      this.resolveWrite = resolve;
      this.rejectWrite = reject;
    });
    this.deadlineMs = nowMs + timeoutMs;
    deadlines.add(this);
    this.check();
  }

  /** ReplyListener: the copy of slot `token` was acknowledged. */
  replyReceived(token: number, _reply: WireMessage): void {
    const slot = this.slots[token];
    if (slot !== undefined) this.host.copyAnswered(this, slot);
  }

  requestFailed(token: number, error: Error): void {
    const slot = this.slots[token];
    if (slot !== undefined) this.host.copyFailed(this, slot, error);
  }

  /** DurabilityListener: this node's copy settled. */
  writeSettled(_token: number, failed: boolean, error: unknown): void {
    if (failed) this.fail(this.localId, error);
    else this.ack(this.localId);
  }

  protected what(): string {
    return `${this.kind} ${describeKey(this.key)}`;
  }

  protected stop(): void {
    this.deadlines.delete(this);
  }

  protected resolved(): void {
    this.resolveWrite(this.result);
  }

  protected rejected(error: Error): void {
    this.rejectWrite(error);
  }
}

/** A replica's kv.apply answered once its merge is durable (ReplicaBackend.applyThen's listener). */
class ApplyReply implements DurabilityListener {
  readonly promise: Promise<WireMessage>;
  private resolveReply!: (reply: WireMessage) => void;
  private rejectReply!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<WireMessage>((resolve, reject) => {
      this.resolveReply = resolve;
      this.rejectReply = reject;
    });
  }

  writeSettled(_token: number, failed: boolean, error: unknown): void {
    if (failed) this.rejectReply(error);
    else this.resolveReply(kvAck);
  }
}

/** A timeout as the transport takes it: whole milliseconds, at least 1. */
function transportTimeoutMs(ms: number): number {
  return Math.max(1, Math.round(ms));
}

export class Coordinator<O> implements MessageHandler, CopyHost<O> {
  private readonly timeoutMs: number;
  private readonly maxInFlightPerPeer: number;
  private readonly defaultR: Consistency;
  private readonly defaultW: Consistency;
  /** Absent: every key has the ring's own replication factor. */
  private readonly replication: NamespaceReplication | undefined;
  private readonly localDc: string | undefined;
  private readonly inFlight = new Map<NodeId, number>();
  private readonly rememberedOps = new Map<string, Promise<CoordinateReply>>();
  private readonly repairer: ReadRepairer<O> | undefined;
  private readonly keyspace: KeyspaceOps;
  private readonly extraReads: number;
  private readonly readSpeculateMs: number;
  private readonly probe: CoordinatorProbe | undefined;
  /** Recent latency of the first peer a pair read asks: the delay before it asks the spare too. */
  private readonly peerReadMs: LatencyPercentile;
  private readonly readRetryMinMs: number;
  /** Write quorum deadlines and pair-read retry delays, on one timer. */
  private readonly deadlines: DeadlineSet;
  /** One error per down owner, reused: a refusal per write would build a stack trace each time. */
  private readonly downErrors = new Map<NodeId, UnavailableError>();
  /** Peers the transport found unreachable, until when (monotonic ms). */
  private readonly suspectUntil = new Map<NodeId, number>();
  /**
   * Slots of a write whose owners are all up, by the home replicas in order
   * (a trie over node ids: no key string built per write; as many entries as
   * distinct home orders, a handful on a small cluster).
   */
  private readonly homeSlots: SlotTrie = { next: new Map(), slots: undefined };
  /** Quorum rules by level and N (local_quorum excepted: it depends on the replicas' data centers). */
  private readonly rules = new Map<Consistency, Array<QuorumRule | undefined>>();
  private readonly unsubscribeLiveness: () => void;
  private opSeq = 0;
  private closed = false;
  private readonly counters: CoordinatorStats = { writesCoordinated: 0, writesForwarded: 0, reads: 0, readRepairs: 0, readRetries: 0, hintsStored: 0, overloaded: 0, touchCatchUps: 0 };

  constructor(
    private readonly deps: CoordinatorDeps<O>,
    options: CoordinatorOptions = {},
  ) {
    this.timeoutMs = options.coordinatorTimeoutMs ?? defaultCoordinatorTimeoutMs;
    this.maxInFlightPerPeer = options.maxInFlightPerPeer ?? defaultMaxInFlightPerPeer;
    this.defaultR = options.defaultR ?? 'quorum';
    this.defaultW = options.defaultW ?? 'quorum';
    this.replication = options.replication;
    this.localDc = options.localDc ?? deps.placement.dcOf(deps.localId);
    this.extraReads = options.extraReads ?? defaultExtraReads;
    if (!Number.isInteger(this.extraReads) || this.extraReads < 0) throw new InvalidArgumentError(`extraReads must be a whole number of replicas, got ${this.extraReads}`);
    this.readSpeculateMs = options.readSpeculateMs ?? defaultReadSpeculateMs;
    this.probe = options.probe;
    this.deadlines = new DeadlineSet(deps.clock);
    const retryPercentile = options.readRetryPercentile ?? defaultReadRetryPercentile;
    // Until enough reads were timed, the spare waits as long as the general path's speculation would.
    this.peerReadMs = new LatencyPercentile(retryPercentile, this.readSpeculateMs);
    this.readRetryMinMs = options.readRetryMinMs ?? defaultReadRetryMinMs;
    this.keyspace = new KeyspaceOps({
      localId: deps.localId,
      placement: deps.placement,
      liveness: deps.liveness,
      backend: deps.backend,
      replication: this.replication,
      timeoutMs: this.timeoutMs,
      request: (node, message, timeoutMs) => this.requestPeer(node, message, timeoutMs),
      flushLocal: () => this.onFlush(),
    });
    // A node the failure detector sees (back) up is no longer suspected.
    this.unsubscribeLiveness = deps.liveness.onChange((node, up) => {
      if (up) this.suspectUntil.delete(node);
    });
    if (options.readRepair !== false) {
      this.repairer = new ReadRepairer<O>({
        model: deps.model,
        localId: deps.localId,
        apply: (node, key, object) => this.applyAt(node, key, object, null, this.timeoutMs).then(() => undefined),
        log: deps.log,
        onRepair: () => {
          this.counters.readRepairs++;
        },
      });
    }
  }

  get localId(): NodeId {
    return this.deps.localId;
  }

  stats(): CoordinatorStats {
    return { ...this.counters };
  }

  close(): void {
    this.closed = true;
    this.unsubscribeLiveness();
  }

  // ---------------------------------------------------------------- placement

  /** Home replicas and fallbacks of `key` for its namespace's N. */
  replicas(key: Uint8Array): PreferenceList {
    const partition = this.deps.placement.partitionOfSlot(slotOf(key));
    const list = this.deps.placement.preferenceList(partition);
    return this.replication === undefined ? list : replicasForN(list, this.replication.nFor(key));
  }

  private dcOf = (node: NodeId): string | undefined => this.deps.placement.dcOf(node);

  private rule(level: Consistency, home: readonly NodeId[], dc: string | undefined = this.localDc): QuorumRule {
    // Every level but local_quorum depends on N alone: built once, not per request.
    if (level === 'local_quorum') return quorumRule(level, home, dc, this.dcOf);
    let byN = this.rules.get(level);
    if (byN === undefined) {
      byN = [];
      this.rules.set(level, byN);
    }
    let rule = byN[home.length];
    if (rule === undefined) {
      rule = quorumRule(level, home, dc, this.dcOf);
      byN[home.length] = rule;
    }
    return rule;
  }

  // ---------------------------------------------------------------- writes

  /** Entry point for a client write at any node. */
  write(request: ClientWrite): Promise<CoordinatedWrite<O>> {
    let list: PreferenceList;
    try {
      this.checkOpen();
      list = this.replicas(request.key);
      // Validate the level here so a bad request fails before any forwarding.
      this.rule(request.w ?? this.defaultW, list.home);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (list.home.includes(this.deps.localId)) return this.coordinate(request, list);
    return this.forward(request, list.home);
  }

  private async forward(request: ClientWrite, home: readonly NodeId[]): Promise<CoordinatedWrite<O>> {
    const timeoutMs = request.timeoutMs ?? this.timeoutMs;
    const deadline = this.deps.clock.nowMs() + timeoutMs + forwardMarginMs;
    // Up replicas in this data center first, then other up ones, in preference
    // order; the rest last, since liveness may lag.
    const up = home.filter((n) => this.looksUp(n));
    const near = up.filter((n) => this.localDc !== undefined && this.dcOf(n) === this.localDc);
    const order = [...near, ...up.filter((n) => !near.includes(n)), ...home.filter((n) => !this.looksUp(n))];
    const message: CoordinateRequest = {
      type: 'kv.coordinate',
      opId: `${this.deps.localId}/${this.deps.random.u32().toString(36)}/${this.opSeq++}`,
      kind: request.kind,
      key: request.key,
      value: request.value ?? null,
      delta: request.delta ?? null,
      context: request.context ?? null,
      overwrite: request.overwrite === true,
      expiresAtMs: request.expiresAtMs ?? null,
      keepExpiry: request.expiresAtMs === undefined,
      w: request.w ?? null,
      strict: request.strict === true,
      timeoutMs,
      dc: this.localDc ?? null,
    };
    const failures: string[] = [];
    for (const node of order) {
      const remaining = deadline - this.deps.clock.nowMs();
      if (remaining <= 0) break;
      let reply: WireMessage;
      try {
        reply = await this.requestPeer(node, message, remaining);
      } catch (error) {
        failures.push(`${node}: ${error instanceof Error ? error.message : String(error)}`);
        // A timeout or a connection lost after sending leaves the outcome
        // unknown: the replica may have written a version of its own (or
        // counted an increment), and another replica would add a second one
        // (a sibling, or an increment counted twice). Only requests that never
        // reached a replica are tried on the next.
        if (error instanceof TimeoutError) {
          throw new TimeoutError(`Cannot ${request.kind} ${describeKey(request.key)}: the coordinating replica ${node} did not answer within ${Math.round(remaining)} ms`, { cause: error });
        }
        if (error instanceof UnavailableError && error.maybeApplied) {
          throw new UnavailableError(
            `Cannot ${request.kind} ${describeKey(request.key)}: the connection to the coordinating replica ${node} closed before it answered, so the write may have taken effect; it was not retried on another replica (read the key to see)`,
            { answered: 0, required: 1, maybeApplied: true },
            { cause: error },
          );
        }
        continue;
      }
      this.counters.writesForwarded++;
      const parsed = parseCoordinateReply(reply);
      if (parsed.error !== null) throw parsed.error;
      return { object: undefined, context: parsed.context, count: parsed.count, touched: parsed.touched };
    }
    throw new UnavailableError(
      `Cannot ${request.kind} ${describeKey(request.key)}: none of its ${home.length} home replicas could coordinate (${failures.join('; ') || 'time ran out'})`,
      { answered: 0, required: 1 },
    );
  }

  /**
   * Runs the write here, as one of the key's home replicas. A put the
   * backend decides now goes straight to the fan-out: no async frame is
   * held across the write's wait.
   */
  private coordinate(request: ClientWrite, list: PreferenceList = this.replicas(request.key)): Promise<CoordinatedWrite<O>> {
    const backend = this.deps.backend;
    if (request.kind !== 'put' || request.value === undefined || backend.coordinatePutNow === undefined) return this.coordinateLater(request, list);
    const startedMs = this.probe === undefined ? 0 : this.deps.clock.nowMs();
    let rule: QuorumRule;
    let now: LocalWrite<O> | WouldWait;
    try {
      // local_quorum means the data center of the node the client asked, which may have forwarded here.
      rule = this.rule(request.w ?? this.defaultW, list.home, request.dc ?? this.localDc);
      now = backend.coordinatePutNow(request.key, request.value, request.context ?? null, request.expiresAtMs ?? null, request.overwrite === true);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (now === wouldWait) return this.coordinateLater(request, list);
    return this.fanOut(request, list, rule, now, null, startedMs);
  }

  /** `coordinate` for writes that wait for the backend (its lock, a read) and for every other kind. */
  private async coordinateLater(request: ClientWrite, list: PreferenceList): Promise<CoordinatedWrite<O>> {
    const startedMs = this.probe === undefined ? 0 : this.deps.clock.nowMs();
    const { key } = request;
    const rule = this.rule(request.w ?? this.defaultW, list.home, request.dc ?? this.localDc);
    const backend = this.deps.backend;
    let written: LocalWrite<O> | undefined;
    let count: bigint | null = null;
    switch (request.kind) {
      case 'put': {
        if (request.value === undefined) throw new InvalidArgumentError('A put needs a value');
        written = await backend.coordinatePut(key, request.value, request.context ?? null, request.expiresAtMs ?? null, request.overwrite === true);
        break;
      }
      case 'delete':
        written = await backend.coordinateDelete(key, request.context ?? null);
        break;
      case 'incr': {
        if (request.delta === undefined) throw new InvalidArgumentError('An increment needs a delta');
        const result = await backend.coordinateIncr(key, request.delta, request.expiresAtMs);
        written = result;
        count = result.value;
        break;
      }
      case 'touch': {
        const touchStartedMs = this.deps.clock.nowMs();
        try {
          written = await backend.coordinateTouch(key, request.expiresAtMs ?? null, request.context ?? null);
        } catch (error) {
          if (!(error instanceof ReplicaBehindError)) throw error;
          // The client read versions this replica missed: merge in a quorum
          // read's versions first, so the touch rewrites those and not older
          // ones that would supersede them. Still behind after that (the
          // client read at one, or from stand-ins): the ReplicaBehindError stands.
          this.counters.touchCatchUps++;
          // One time budget for the read and the write after it, so a forwarder's deadline still holds.
          const budgetMs = request.timeoutMs ?? this.timeoutMs;
          const fetched = await this.read(key, { r: 'quorum', timeoutMs: budgetMs });
          if (fetched !== undefined) await backend.apply(key, fetched);
          const leftMs = budgetMs - (this.deps.clock.nowMs() - touchStartedMs);
          if (leftMs <= 0) throw new TimeoutError(`Cannot touch ${describeKey(key)}: fetching the versions its context names took the whole ${budgetMs} ms`);
          request = { ...request, timeoutMs: leftMs };
          written = await backend.coordinateTouch(key, request.expiresAtMs ?? null, request.context ?? null);
        }
        if (written === undefined) return { object: undefined, context: null, count: null, touched: false };
        break;
      }
    }
    return this.fanOut(request, list, rule, written, count, startedMs);
  }

  /** Sends a write decided here to the other replicas; resolves once W copies (this one included) are durable. */
  private fanOut(request: ClientWrite, list: PreferenceList, rule: QuorumRule, written: LocalWrite<O>, count: bigint | null, startedMs: number): Promise<CoordinatedWrite<O>> {
    const { key } = request;
    const { home, fallbacks } = list;
    this.counters.writesCoordinated++;
    const encoded = written.encoded ?? this.deps.model.encode(written.object);
    const strict = request.strict === true;
    const slots = this.slots(home, fallbacks, strict);
    const localId = this.deps.localId;
    let possible = rule.counts(localId) ? 1 : 0;
    for (const slot of slots) if (slot.owner !== localId && rule.counts(slot.owner)) possible++;
    const result: CoordinatedWrite<O> = { object: undefined, context: written.context, count, touched: true };
    // Every replica reports straight into the write's record: no promise per replica on the way.
    const write = new WriteInFlight<O>(
      request.kind,
      key,
      encoded,
      strict,
      slots,
      fallbacks,
      request.timeoutMs ?? this.timeoutMs,
      rule,
      possible,
      localId,
      result,
      this.deadlines,
      this.deps.clock.nowMs(),
      this,
    );
    const timing = this.probe === undefined ? undefined : timeAnswers(write, this.deps.clock, startedMs);
    // The peers get the object before the local fsync finishes; the local
    // acknowledgement counts only once it is durable (a failed sync is no ack).
    if (written.whenDurable !== undefined) written.whenDurable(write, 0);
    else if (written.durable === undefined) write.ack(localId);
    else
      written.durable.then(
        () => write.ack(localId),
        (error: unknown) => write.fail(localId, error),
      );
    // One message for every owner that takes its own copy (the transport encodes it at once).
    let message: ApplyRequest | undefined;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as Slot;
      if (slot.owner === localId) continue;
      if (slot.hintOnly || slot.node !== slot.owner) this.replicate(slot, write);
      else this.sendCopy(slot, i, write, (message ??= { type: 'kv.apply', key, object: encoded, hintFor: null }));
    }
    if (timing === undefined) return write.promise;
    const probe = this.probe;
    return write.promise.then((done) => {
      const peerMs: Array<number | undefined> = [];
      for (const slot of slots) if (slot.owner !== localId) peerMs.push(timing.get(slot.owner));
      probe?.write(this.deps.clock.nowMs() - startedMs, timing.get(localId), peerMs);
      return done;
    });
  }

  /**
   * Where each home replica's copy goes: the owner itself when it is up (or in
   * strict mode), else the next healthy fallback, which keeps it as a hint.
   */
  private slots(home: readonly NodeId[], fallbacks: readonly NodeId[], strict: boolean): readonly Slot[] {
    const { localId } = this.deps;
    let allHome = true;
    if (!strict) for (const owner of home) if (owner !== localId && !this.looksUp(owner)) allHome = false;
    if (allHome) {
      // The usual case: every owner takes its own copy. Those slots depend on
      // the home replicas alone, so they are built once per order.
      let node = this.homeSlots;
      for (const owner of home) {
        let next = node.next.get(owner);
        if (next === undefined) {
          next = { next: new Map(), slots: undefined };
          node.next.set(owner, next);
        }
        node = next;
      }
      return (node.slots ??= Object.freeze(home.map((owner): Slot => Object.freeze({ owner, node: owner, hintOnly: false }))));
    }
    const spare = this.deps.handoff === undefined ? [] : fallbacks.filter((n) => this.looksUp(n));
    return home.map((owner) => {
      if (owner === localId || this.looksUp(owner)) return { owner, node: owner, hintOnly: false };
      const standIn = spare.shift();
      if (standIn !== undefined) return { owner, node: standIn, hintOnly: false };
      // Only the failure detector's verdict skips the request: an owner merely
      // suspected (refused once, within unreachableSuspectMs) may have restarted
      // since, and a refusal while the transport backs off costs no wait.
      return { owner, node: owner, hintOnly: this.deps.handoff !== undefined && !this.deps.liveness.isUp(owner) };
    });
  }

  /**
   * Sends one replica's copy and reports it to the write's record; on failure
   * tries a spare stand-in (sloppy mode) and, when nothing acknowledged, keeps
   * a hint here so the owner converges.
   */
  private replicate(slot: Slot, write: WriteInFlight<O>): void {
    const { key, encoded } = write;
    const { owner } = slot;
    if (slot.hintOnly) {
      void this.hintLocally(owner, key, encoded).then(() => write.fail(owner, this.downError(owner)));
      return;
    }
    this.applyAt(slot.node, key, encoded, slot.node === owner ? null : owner, write.timeoutMs).then(
      () => write.ack(owner),
      (error: unknown) => void this.replicateElsewhere(slot, write, error),
    );
  }

  /**
   * The usual copy: the owner itself, up. requestPeer and its reaction in
   * one: a single reaction per copy, no intermediate promise.
   */
  private sendCopy(slot: Slot, index: number, write: WriteInFlight<O>, message: ApplyRequest): void {
    const node = slot.node;
    const overloaded = this.admitRequest(node);
    if (overloaded !== undefined) {
      // Not counted in flight, so not a peer failure either: straight to a stand-in or a hint.
      void this.replicateElsewhere(slot, write, overloaded);
      return;
    }
    const transport = this.deps.transport;
    if (transport.requestThen !== undefined) {
      // The write's record hears the reply itself (slot index as token): no promise per copy.
      let refused: Error | undefined;
      try {
        refused = transport.requestThen(node, message, transportTimeoutMs(write.timeoutMs), write, index);
      } catch (error) {
        refused = error instanceof Error ? error : new Error(String(error));
      }
      if (refused !== undefined) this.copyFailed(write, slot, refused);
      return;
    }
    this.sendRequest(node, message, write.timeoutMs).then(
      () => this.copyAnswered(write, slot),
      (error: unknown) => this.copyFailed(write, slot, error),
    );
  }

  /** @internal CopyHost: a peer acknowledged its copy of `write`. */
  copyAnswered(write: WriteInFlight<O>, slot: Slot): void {
    this.peerAnswered(slot.node);
    write.ack(slot.owner);
  }

  /** @internal CopyHost: a peer's copy of `write` failed: a stand-in or a hint next. */
  copyFailed(write: WriteInFlight<O>, slot: Slot, error: unknown): void {
    this.peerFailed(slot.node, error);
    void this.replicateElsewhere(slot, write, error);
  }

  /** The first copy of a replica failed: a spare stand-in (sloppy mode), else a hint kept here. */
  private async replicateElsewhere(slot: Slot, write: WriteInFlight<O>, firstError: unknown): Promise<void> {
    const { key, encoded } = write;
    let lastError = firstError;
    if (!write.strict && this.deps.handoff !== undefined) {
      // Nodes holding or asked for a copy: a stand-in is taken only once per write.
      const used = (write.used ??= new Set(write.slots.map((s) => s.node)));
      const standIn = write.fallbacks.find((n) => !used.has(n) && n !== this.deps.localId && this.looksUp(n));
      if (standIn !== undefined) {
        used.add(standIn);
        const second = await settle(this.applyAt(standIn, key, encoded, slot.owner, write.timeoutMs));
        if (second.ok) {
          write.ack(slot.owner);
          return;
        }
        lastError = second.error;
      }
    }
    await this.hintLocally(slot.owner, key, encoded);
    write.fail(slot.owner, lastError);
  }

  private downError(owner: NodeId): UnavailableError {
    let error = this.downErrors.get(owner);
    if (error === undefined) {
      error = new UnavailableError(`Node ${owner} is down or unreachable and no other node can stand in for it; a hint is kept for it`, { answered: 0, required: 1 });
      this.downErrors.set(owner, error);
    }
    return error;
  }

  /** Up by the failure detector and not just found unreachable by the transport. */
  private looksUp(node: NodeId): boolean {
    if (!this.deps.liveness.isUp(node)) return false;
    if (this.suspectUntil.size === 0) return true;
    const until = this.suspectUntil.get(node);
    if (until === undefined) return true;
    if (this.deps.clock.nowMs() < until) return false;
    this.suspectUntil.delete(node);
    return true;
  }

  private async hintLocally(owner: NodeId, key: Uint8Array, encoded: Uint8Array): Promise<void> {
    if (this.deps.handoff === undefined || this.closed) return;
    try {
      // Lazy: this hint counts towards no quorum, so its sync may wait to batch.
      await this.deps.handoff.store(owner, key, encoded, { lazy: true });
      this.counters.hintsStored++;
    } catch (error) {
      // A full backlog loses only the hint; anti-entropy repairs the replica later.
      this.deps.log.warn('could not keep a hint', { owner, key: describeKey(key), error });
    }
  }

  /** Sends an object to `node` (`hintFor`: as a stand-in for that owner). */
  private applyAt(node: NodeId, key: Uint8Array, encoded: Uint8Array, hintFor: NodeId | null, timeoutMs: number): Promise<unknown> {
    const message: ApplyRequest = { type: 'kv.apply', key, object: encoded, hintFor };
    return node === this.deps.localId ? this.onApply(message) : this.requestPeer(node, message, timeoutMs);
  }

  // ---------------------------------------------------------------- reads

  /**
   * Reads `key` at consistency `r`; resolves with the merged object (undefined:
   * no replica has it). Asks R counting replicas (plus extraReads), this node
   * and those the failure detector believes up first; a held-back replica is
   * asked when one of those fails, and all of them after readSpeculateMs.
   */
  read(key: Uint8Array, options: { r?: Consistency; timeoutMs?: number } = {}): Promise<O | undefined> {
    try {
      this.checkOpen();
      const { home } = this.replicas(key);
      const rule = this.rule(options.r ?? this.defaultR, home);
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      this.counters.reads++;
      return this.readPair(key, home, rule, timeoutMs) ?? this.readAll(key, home, rule, timeoutMs, false);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /**
   * The common read, two answers needed with this node one of them: this
   * node's copy at once (no promise) and one request to the live peer with
   * the fewest requests outstanding (a stalled or busy peer piles them up),
   * without the general path's held replicas and gather. A peer that has not
   * answered after the recent readRetryPercentile of peer reads (speculative
   * retry, as Cassandra's `speculative_retry`), or that fails, has the read
   * asked of a spare peer too, and the first answer wins. Both failing, or
   * nothing by readSpeculateMs, hands the read to the general path, which
   * then asks every replica. Undefined when it does not apply.
   */
  private readPair(key: Uint8Array, home: readonly NodeId[], rule: QuorumRule, timeoutMs: number): Promise<O | undefined> | undefined {
    const { localId, backend } = this.deps;
    if (rule.required !== 2 || this.extraReads !== 0 || backend.readNow === undefined || !rule.counts(localId) || !home.includes(localId)) return undefined;
    let peer: NodeId | undefined;
    let spare: NodeId | undefined;
    let peerLoad = Infinity;
    for (const node of home) {
      if (node === localId || !rule.counts(node) || !this.looksUp(node)) continue;
      const load = this.inFlight.get(node) ?? 0;
      if (load < peerLoad) {
        spare ??= peer;
        peer = node;
        peerLoad = load;
      } else {
        spare ??= node;
      }
    }
    if (peer === undefined) return undefined;
    let local: O | undefined | WouldWait;
    try {
      local = backend.readNow(key);
    } catch {
      // A local copy that cannot be read (corrupt) does not fail the read: the general path asks the others.
      return undefined;
    }
    if (local === wouldWait) return undefined;
    const localCopy = local;
    const { clock } = this.deps;
    const startedMs = clock.nowMs();
    const message: ReadRequest = { type: 'kv.read', key };
    const peerTimeoutMs = Math.min(timeoutMs, this.readSpeculateMs);
    const first = peer;
    return new Promise<O | undefined>((resolve, reject) => {
      let done = false;
      let asked = 1;
      let failed = 0;
      let lastError: unknown;
      // The retry delay, kept in the coordinator's DeadlineSet (no timer per read).
      let retry: Expiring | undefined;
      const stopRetry = (): boolean => {
        if (retry === undefined) return false;
        this.deadlines.delete(retry);
        retry = undefined;
        return true;
      };
      const answer = (node: NodeId, askedMs: number, reply: WireMessage): void => {
        const nowMs = clock.nowMs();
        if (node === first) this.peerReadMs.record(nowMs - askedMs);
        if (done) return;
        done = true;
        stopRetry();
        this.probe?.read(nowMs - startedMs, nowMs - askedMs);
        try {
          resolve(this.pairAnswer(key, localCopy, node, reply));
        } catch (error) {
          reject(error as Error);
        }
      };
      const fail = (error: unknown): void => {
        if (done) return;
        failed++;
        lastError = error;
        if (stopRetry()) {
          // The first peer failed before the retry delay: the spare now.
          askSpare();
          return;
        }
        if (failed < asked) return;
        done = true;
        const remainingMs = timeoutMs - (clock.nowMs() - startedMs);
        if (remainingMs <= 0) {
          reject(new TimeoutError(`Cannot read ${describeKey(key)} at consistency ${rule.label}: 1 of ${rule.required} required replicas answered within ${timeoutMs} ms (${error instanceof Error ? error.message : String(error)})`));
          return;
        }
        this.readAll(key, home, rule, remainingMs, lastError instanceof TimeoutError).then(resolve, reject);
      };
      const askSpare = (): void => {
        retry = undefined;
        if (done || spare === undefined) return;
        asked++;
        this.counters.readRetries++;
        const askedMs = clock.nowMs();
        const node = spare;
        this.requestPeer(node, message, Math.max(1, Math.min(peerTimeoutMs, timeoutMs - (askedMs - startedMs)))).then(
          (reply) => answer(node, askedMs, reply),
          fail,
        );
      };
      this.requestPeer(first, message, peerTimeoutMs).then((reply) => answer(first, startedMs, reply), fail);
      if (spare !== undefined && !done) {
        retry = { deadlineMs: startedMs + Math.min(peerTimeoutMs, Math.max(this.readRetryMinMs, this.peerReadMs.valueMs)), deadlineSlot: -1, expire: askSpare };
        this.deadlines.add(retry);
      }
    });
  }

  /** A pair read's result: the local copy merged with the peer's, repairing whichever is behind. */
  private pairAnswer(key: Uint8Array, local: O | undefined, node: NodeId, reply: WireMessage): O | undefined {
    const { model, localId } = this.deps;
    const object = parseReadReply(reply).object;
    const remote = object === null ? undefined : model.decode(object);
    if (local === undefined || remote === undefined) {
      if (local !== remote) this.repairAfter(key, localId, local, node, remote);
      return local ?? remote;
    }
    if (local === remote || model.equal?.(local, remote) === true) return local;
    this.repairAfter(key, localId, local, node, remote);
    return model.merge(local, remote);
  }

  /** Read repair for two answers that differ: the repairer merges and sends to whichever is behind. */
  private repairAfter(key: Uint8Array, a: NodeId, aValue: O | undefined, b: NodeId, bValue: O | undefined): void {
    if (this.repairer === undefined) return;
    void this.repairer.afterRead(key, [
      { owner: a, outcome: Promise.resolve({ ok: true, value: aValue }) },
      { owner: b, outcome: Promise.resolve({ ok: true, value: bValue }) },
    ]);
  }

  /** The general read: `askAll` asks every home replica up front (a slow first choice was seen). */
  private async readAll(key: Uint8Array, home: readonly NodeId[], rule: QuorumRule, timeoutMs: number, askAll: boolean): Promise<O | undefined> {
    const startedMs = this.deps.clock.nowMs();
    const deadline = startedMs + timeoutMs;
    const order = this.readOrder(home, rule);
    const held: Array<(ask: boolean) => void> = [];
    const askNext = (): void => held.shift()?.(true);
    let asked = 0;
    const ask = (owner: NodeId, remainingMs: number): Promise<Outcome<O | undefined>> => {
      asked++;
      return settle(this.readAt(owner, key, remainingMs)).then((outcome) => {
        if (!outcome.ok) askNext();
        return outcome;
      });
    };
    let needed = askAll ? order.length : rule.required;
    let extra = this.extraReads;
    const attempts: Array<Attempt<O | undefined>> = order.map((owner) => {
      // Extra reads go to live replicas only: asking a down one buys nothing.
      if (needed > 0 || (extra > 0 && (owner === this.deps.localId || this.looksUp(owner)))) {
        if (rule.counts(owner)) {
          if (needed > 0) needed--;
          else extra--;
        }
        return { owner, outcome: ask(owner, timeoutMs) };
      }
      const outcome = new Promise<Outcome<O | undefined>>((resolve) => {
        held.push((now) => resolve(now ? ask(owner, Math.max(1, deadline - this.deps.clock.nowMs())) : { ok: false, error: notAsked }));
      });
      return { owner, outcome };
    });
    const speculate = held.length === 0 ? undefined : this.deps.clock.setTimer(this.readSpeculateMs, () => {
      while (held.length > 0) askNext();
    });
    let answers: GatherResult<O | undefined>['answers'];
    try {
      ({ answers } = await gather(attempts, rule, this.deps.clock, timeoutMs, () => `read ${describeKey(key)}`));
    } finally {
      speculate?.cancel();
      for (const release of held.splice(0)) release(false);
    }
    const { model } = this.deps;
    let merged: O | undefined;
    // Every replica asked has answered, with the same object: nothing to
    // repair, so the read repairer's wait for the other attempts is skipped.
    let agreed = asked === answers.length;
    for (const { value } of answers) {
      if (value === undefined) agreed = false;
      else if (merged === undefined) merged = value;
      else if (model.equal?.(merged, value) !== true) {
        agreed = false;
        merged = model.merge(merged, value);
      }
    }
    if (this.repairer !== undefined && !agreed) void this.repairer.afterRead(key, attempts);
    this.probe?.read(this.deps.clock.nowMs() - startedMs, undefined);
    return merged;
  }

  /** Replicas in the order a read asks them: this node, then those believed up, then the rest. */
  private readOrder(home: readonly NodeId[], rule: QuorumRule): NodeId[] {
    const first: NodeId[] = [];
    const up: NodeId[] = [];
    const rest: NodeId[] = [];
    const idle: NodeId[] = [];
    for (const node of home) {
      // Replicas that cannot count go last: asked only as spares.
      if (!rule.counts(node)) idle.push(node);
      else if (node === this.deps.localId) first.push(node);
      else if (this.looksUp(node)) up.push(node);
      else rest.push(node);
    }
    return [...first, ...up, ...rest, ...idle];
  }

  private async readAt(node: NodeId, key: Uint8Array, timeoutMs: number): Promise<O | undefined> {
    if (node === this.deps.localId) return this.deps.backend.read(key);
    const message: ReadRequest = { type: 'kv.read', key };
    const reply = parseReadReply(await this.requestPeer(node, message, timeoutMs));
    return reply.object === null ? undefined : this.deps.model.decode(reply.object);
  }

  // ---------------------------------------------------------------- keyspace-wide (keyspace.ts)

  scan(cursor: string, count: number): Promise<{ cursor: string; keys: Uint8Array[] }> {
    this.checkOpen();
    return this.keyspace.scan(cursor, count);
  }

  approximateCount(): Promise<number> {
    this.checkOpen();
    return this.keyspace.approximateCount();
  }

  flushAll(): Promise<void> {
    this.checkOpen();
    return this.keyspace.flushAll();
  }

  // ---------------------------------------------------------------- peers

  /** A request to a peer, refusing fast when too many are already outstanding. */
  private requestPeer(node: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    const overloaded = this.admitRequest(node);
    if (overloaded !== undefined) return Promise.reject(overloaded);
    // Plain reactions rather than an async frame: this runs for every peer request.
    return this.sendRequest(node, message, timeoutMs).then(
      (reply) => {
        this.peerAnswered(node);
        return reply;
      },
      (error: unknown) => {
        this.peerFailed(node, error);
        throw error;
      },
    );
  }

  /** Counts a request to `node` as in flight, or answers why it may not be sent (too many already are). */
  private admitRequest(node: NodeId): OverloadedError | undefined {
    const current = this.inFlight.get(node) ?? 0;
    if (current >= this.maxInFlightPerPeer) {
      this.counters.overloaded++;
      return new OverloadedError(`Too many requests in flight to ${node} (${current}, the limit is ${this.maxInFlightPerPeer})`);
    }
    this.inFlight.set(node, current + 1);
    return undefined;
  }

  /** transport.request, a throw turned into a rejection. */
  private sendRequest(node: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    try {
      return this.deps.transport.request(node, message, transportTimeoutMs(timeoutMs));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private peerAnswered(node: NodeId): void {
    this.requestDone(node);
    if (this.suspectUntil.size > 0) this.suspectUntil.delete(node);
  }

  private peerFailed(node: NodeId, error: unknown): void {
    this.requestDone(node);
    if (error instanceof UnavailableError) this.suspectUntil.set(node, this.deps.clock.nowMs() + unreachableSuspectMs);
  }

  private requestDone(node: NodeId): void {
    const left = (this.inFlight.get(node) ?? 1) - 1;
    if (left <= 0) this.inFlight.delete(node);
    else this.inFlight.set(node, left);
  }

  // ---------------------------------------------------------------- serving peers

  onMessage(from: NodeId, message: WireMessage): void {
    this.deps.log.debug('ignoring one-way kv message', { from, type: message.type });
  }

  onRequest(_from: NodeId, message: WireMessage): Promise<WireMessage> {
    let request: KvRequest;
    try {
      this.checkOpen();
      request = parseKvRequest(message);
      // kv.apply and kv.read come with every client operation: promise chains, not async frames.
      switch (request.type) {
        case 'kv.apply': {
          if (this.probe === undefined) return this.applyReply(request);
          const { probe } = this;
          const startedMs = this.deps.clock.nowMs();
          return this.applyReply(request).then((reply) => {
            probe.apply(this.deps.clock.nowMs() - startedMs);
            return reply;
          });
        }
        case 'kv.read': {
          const { backend } = this.deps;
          if (backend.readEncoded !== undefined) return backend.readEncoded(request.key).then((object): ReadReply => ({ type: 'kv.read.reply', object: object ?? null }));
          return backend.read(request.key).then((object): ReadReply => ({ type: 'kv.read.reply', object: object === undefined ? null : this.deps.model.encode(object) }));
        }
        default:
          return this.onOtherRequest(request);
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private async onOtherRequest(request: Exclude<KvRequest, ApplyRequest | ReadRequest>): Promise<WireMessage> {
    switch (request.type) {
      case 'kv.coordinate':
        return this.onCoordinate(request);
      case 'kv.scan': {
        const after = request.afterSlot === null || request.afterKey === null ? null : { slot: request.afterSlot, key: request.afterKey };
        const page = await this.deps.backend.scan(request.fromSlot, request.toSlot, after, Math.min(request.count, maxScanCount));
        return { type: 'kv.scan.reply', slots: page.entries.map((e) => e.slot), keys: page.entries.map((e) => e.key), done: page.done };
      }
      case 'kv.count':
        return { type: 'kv.count.reply', count: await this.deps.backend.count() };
      case 'kv.flush':
        await this.onFlush();
        return kvAck;
    }
  }

  /**
   * A peer's kv.apply, acknowledged once durable here. The usual copy (no
   * hint) goes through the backend's applyThen when it has one: one reply
   * promise, resolved by the store's durability callback, and nothing
   * decoded alive across the fsync. Never throws.
   */
  private applyReply(request: ApplyRequest): Promise<WireMessage> {
    const { backend, localId } = this.deps;
    if (backend.applyThen === undefined || (request.hintFor !== null && request.hintFor !== localId)) return this.onApply(request).then(() => kvAck);
    try {
      const reply = new ApplyReply();
      const settled = backend.applyThen(request.key, request.object, reply, 0);
      if (settled === durableNow) return ackedNow;
      if (settled instanceof Promise) return settled.then(() => kvAck);
      return reply.promise;
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Never throws: a failure is a rejected promise. */
  private onApply(request: ApplyRequest): Promise<unknown> {
    try {
      if (request.hintFor !== null && request.hintFor !== this.deps.localId) {
        // A stand-in keeps the copy only as a hint: its own replica set stays
        // exactly the ring's, so scans and counts never see stray keys.
        if (this.deps.handoff === undefined) throw new UnavailableError(`Node ${this.deps.localId} keeps no hints`, { answered: 0, required: 1 });
        // Decoding first refuses garbage before it is made durable.
        this.deps.model.decode(request.object);
        return this.deps.handoff.store(request.hintFor, request.key, request.object);
      }
      return this.deps.backend.apply(request.key, this.deps.model.decode(request.object), request.object);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private onCoordinate(request: CoordinateRequest): Promise<CoordinateReply> {
    const known = this.rememberedOps.get(request.opId);
    if (known !== undefined) return known;
    const run = this.runForwarded(request);
    this.rememberedOps.set(request.opId, run);
    if (this.rememberedOps.size > maxRememberedOps) {
      const oldest = this.rememberedOps.keys().next().value;
      if (oldest !== undefined) this.rememberedOps.delete(oldest);
    }
    return run;
  }

  private async runForwarded(request: CoordinateRequest): Promise<CoordinateReply> {
    const { home } = this.replicas(request.key);
    if (!home.includes(this.deps.localId)) {
      throw new ProtocolError(`Node ${this.deps.localId} is not a home replica of ${describeKey(request.key)} and will not coordinate it`);
    }
    try {
      const outcome = await this.coordinate({
        kind: request.kind,
        key: request.key,
        ...(request.value !== null ? { value: request.value } : {}),
        ...(request.delta !== null ? { delta: request.delta } : {}),
        context: request.context,
        ...(request.overwrite ? { overwrite: true } : {}),
        ...(request.keepExpiry ? {} : { expiresAtMs: request.expiresAtMs }),
        ...(request.w !== null ? { w: request.w } : {}),
        strict: request.strict,
        timeoutMs: request.timeoutMs,
        ...(request.dc !== null ? { dc: request.dc } : {}),
      });
      return { type: 'kv.coordinate.reply', context: outcome.context, count: outcome.count, touched: outcome.touched, error: null };
    } catch (error) {
      // The write's own failure travels inside the reply, so the forwarder can
      // tell it from an unreachable coordinator and does not retry it elsewhere.
      if (isRingkvError(error)) return { type: 'kv.coordinate.reply', context: null, count: null, touched: false, error: toWireError(error) };
      throw error;
    }
  }

  private async onFlush(): Promise<void> {
    await this.deps.backend.flush();
    await this.deps.handoff?.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError(`The coordinator of ${this.deps.localId} is closed`);
  }
}

/** A kv.apply durable as it was handed over: one resolved reply shared by all. */
const ackedNow: Promise<WireMessage> = Promise.resolve(kvAck);

/** Diagnostics: when each replica of a write answered, in ms after `startedMs`. */
function timeAnswers(wait: { observer: ((owner: NodeId) => void) | undefined }, clock: Clock, startedMs: number): Map<NodeId, number> {
  const times = new Map<NodeId, number>();
  wait.observer = (owner) => {
    times.set(owner, clock.nowMs() - startedMs);
  };
  return times;
}

/** The outcome of a replica a read held back and did not need. */
const notAsked = new UnavailableError('The read had its answers before this replica was asked', { answered: 0, required: 1 });

