/**
 * The replicated KvApi: what a node's front ends call in a cluster. It binds
 * the generic Coordinator to ReplicaStore and the versioned object codec, and
 * `createClusterKv` wires one node's replication (coordinator, hinted handoff,
 * the `kv` route) from its parts.
 */
import type { Clock, Logger, MessageRouter, NodeId, Random, Transport } from '../core/index.ts';
import { InvalidArgumentError, describeKey } from '../core/index.ts';
import type { GetResult, KvApi, PutResult, ReadOptions, ScanResult, WriteOptions } from './api.ts';
import { durableLater, wouldWait, type DurabilityListener, type DurableLater, type DurableNow, type WouldWait } from './api.ts';
import { Coordinator, type ClientWrite, type CoordinatorOptions, type LocalWrite, type ObjectModel, type ReplicaBackend } from './coordinator.ts';
import type { ScanPosition } from './keyspace.ts';
import { HintedHandoff, maxHintAgeFor, type HandoffOptions, type HintQueue } from './handoff.ts';
import { storageKey, validateKey, validateValue } from './keys.ts';
import { contextFromClient, toGetResult, validateExpiry } from './local-kv.ts';
import { decodeObject, encodeContext, encodeObject, isLive, mergeObjects, sameObject, type StoredObject } from './object.ts';
import type { NodeLiveness, Placement } from './placement.ts';
import type { ReplicaStore, StoreWriteOutcome } from './replica-store.ts';

/** The versioned object as the coordinator sees it. */
export const storedObjectModel: ObjectModel<StoredObject> = {
  encode: encodeObject,
  decode: decodeObject,
  merge: mergeObjects,
  covers(have, want) {
    return have !== undefined && sameObject(mergeObjects(have, want), have);
  },
  equal: sameObject,
};

/** Context bytes as ReplicaStore takes them (LocalKv's decoding, so both front ends agree). */
function contextOrNull(bytes: Uint8Array | null): ReturnType<typeof contextFromClient> {
  return contextFromClient(bytes);
}

/**
 * The store's outcome as a LocalWrite: the coordinator counts the local ack
 * once it is durable, told through `whenDurable` when the store offers it
 * (then the outcome's promise is never made), else by awaiting `durable`.
 */
function localWrite(out: StoreWriteOutcome): LocalWrite<StoredObject> {
  const context = encodeContext(out.context);
  if (out.settled === true) return out.encoded === undefined ? { object: out.object, context } : { object: out.object, context, encoded: out.encoded };
  if (out.whenDurable !== undefined) return new StoreLocalWrite(out, context);
  return { object: out.object, context, durable: out.durable, encoded: out.encoded };
}

/** A pending store outcome as a LocalWrite whose `durable` promise is made only if read. */
class StoreLocalWrite implements LocalWrite<StoredObject> {
  constructor(
    private readonly out: StoreWriteOutcome,
    readonly context: Uint8Array,
  ) {}

  get object(): StoredObject {
    return this.out.object;
  }

  get encoded(): Uint8Array | undefined {
    return this.out.encoded;
  }

  get durable(): Promise<void> {
    return this.out.durable;
  }

  whenDurable(listener: DurabilityListener, token: number): void {
    this.out.whenDurable?.(listener, token);
  }
}

/** ReplicaStore behind the coordinator's ReplicaBackend interface. */
export class ReplicaStoreBackend implements ReplicaBackend<StoredObject> {
  /** `clock`: the store's; with it, reads the store can answer at once skip its promise (readRawNow). */
  constructor(
    private readonly store: ReplicaStore,
    private readonly clock?: Clock,
  ) {}

  /** ReplicaStore.read: expired versions removed, tombstones kept. */
  read(key: Uint8Array): Promise<StoredObject | undefined> {
    let now: StoredObject | undefined | WouldWait;
    try {
      now = this.readNow(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return now === wouldWait ? this.store.read(key) : Promise.resolve(now);
  }

  /** `read` answered at once when the store can (readRawNow), else wouldWait. */
  readNow(key: Uint8Array): StoredObject | undefined | WouldWait {
    if (this.clock === undefined) return wouldWait;
    const raw = this.store.readRawNow(key);
    if (raw === wouldWait || raw === undefined) return raw;
    const now = this.clock.wallMs();
    for (const v of raw.versions) {
      if (!isLive(v, now)) return { context: raw.context, versions: raw.versions.filter((x) => isLive(x, now)) };
    }
    return raw;
  }

  /** The stored bytes for a peer's kv.read: no decode and re-encode on this replica. */
  readEncoded(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.store.readEncoded(key);
  }

  /** Resolves only once the merge is durable here, so a kv.apply ack means a synced replica. */
  apply(key: Uint8Array, incoming: StoredObject, encoded?: Uint8Array): Promise<StoredObject> {
    return this.store.apply(key, incoming, encoded);
  }

  /** ReplicaStore.applyThen: a peer's copy merged with nothing decoded kept across the fsync. */
  applyThen(key: Uint8Array, encoded: Uint8Array, listener: DurabilityListener, token: number): DurableNow | DurableLater | Promise<unknown> {
    return this.store.applyThen(key, encoded, listener, token);
  }

  async coordinatePut(key: Uint8Array, value: Uint8Array, context: Uint8Array | null, expiresAtMs: number | null, overwrite: boolean): Promise<LocalWrite<StoredObject>> {
    const now = this.coordinatePutNow(key, value, context, expiresAtMs, overwrite);
    if (now !== wouldWait) return now;
    return localWrite(await this.store.coordinatePut(key, value, contextOrNull(context), { expiresAtMs, overwrite }));
  }

  /**
   * Decided at once when nothing has to be waited for (no lock held, the
   * object known): no key lock, no engine promise before the peers get it.
   */
  coordinatePutNow(key: Uint8Array, value: Uint8Array, context: Uint8Array | null, expiresAtMs: number | null, overwrite: boolean): LocalWrite<StoredObject> | WouldWait {
    // Without a context a put is blind (a sibling of what is stored) unless it
    // overwrites, superseding everything this replica holds (RESP SET).
    const now = this.store.coordinatePutNow(key, value, contextOrNull(context), { expiresAtMs, overwrite });
    return now === wouldWait ? now : localWrite(now);
  }

  async coordinateDelete(key: Uint8Array, context: Uint8Array | null): Promise<LocalWrite<StoredObject>> {
    return localWrite(await this.store.coordinateDelete(key, contextOrNull(context)));
  }

  async coordinateIncr(key: Uint8Array, delta: bigint, expiresAtMs: number | null | undefined): Promise<LocalWrite<StoredObject> & { value: bigint }> {
    const out = await this.store.coordinateIncr(key, delta, expiresAtMs === undefined ? {} : { expiresAtMs });
    // Not a spread: a pending outcome's durability lives in its prototype's methods.
    return Object.assign(localWrite(out), { value: out.value });
  }

  async coordinateTouch(key: Uint8Array, expiresAtMs: number | null, context: Uint8Array | null): Promise<LocalWrite<StoredObject> | undefined> {
    const out = await this.store.coordinateTouch(key, expiresAtMs, contextOrNull(context));
    return out === undefined ? undefined : localWrite(out);
  }

  async scan(fromSlot: number, toSlot: number, after: ScanPosition | null, count: number): Promise<{ entries: ScanPosition[]; done: boolean }> {
    const entries: ScanPosition[] = [];
    let cursor: Uint8Array | undefined = after === null ? undefined : storageKey(after.key, after.slot);
    // scanLocal's limit counts dead entries too, so keep reading pages until enough live keys.
    for (;;) {
      const page = await this.store.scanLocal({ fromPartition: fromSlot, toPartition: toSlot, limit: count - entries.length, ...(cursor === undefined ? {} : { after: cursor }) });
      for (const item of page.items) entries.push({ slot: item.partition, key: item.key });
      if (page.next === null) return { entries, done: true };
      if (entries.length >= count) return { entries, done: false };
      cursor = page.next;
    }
  }

  async count(): Promise<number> {
    return this.store.approximateKeys();
  }

  async flush(): Promise<void> {
    await this.store.clear();
  }
}

/** KvApi over the coordinator: any node serves any key. */
export class ClusterKv implements KvApi {
  constructor(
    readonly coordinator: Coordinator<StoredObject>,
    private readonly clock: Clock,
  ) {}

  // get and put are the front ends' hot path: promise chains, not async frames.
  get(key: Uint8Array, options: ReadOptions = {}): Promise<GetResult> {
    try {
      validateKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const readOptions: { r?: ReadOptions['r']; timeoutMs?: number } = {};
    if (options.r !== undefined) readOptions.r = options.r;
    if (options.timeoutMs !== undefined) readOptions.timeoutMs = options.timeoutMs;
    return this.coordinator.read(key, readOptions).then((object) => toGetResult(object, this.clock.wallMs()));
  }

  put(key: Uint8Array, value: Uint8Array, options: WriteOptions = {}): Promise<PutResult> {
    let request: ClientWrite;
    try {
      request = putRequest(key, value, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.coordinator.write(request).then((out) => {
      if (out.context === null) throw new InvalidArgumentError(`The put of ${describeKey(key)} returned no context`);
      return { context: out.context };
    });
  }

  /**
   * The front ends' plain SET (KvApi.putNow): the coordinated write starts
   * now and the promise settles when `put`'s would, without the PutResult
   * (its context) nobody asked for. A quorum write always waits for
   * replicas, so the answer is never `durableNow` or `wouldWait`. Throws
   * what `put` would reject with before anything is sent.
   */
  putNow(key: Uint8Array, value: Uint8Array, options: WriteOptions = {}): Promise<void> | DurableNow | WouldWait {
    return this.coordinator.write(putRequest(key, value, options)).then(settledVoid);
  }

  /** putNow telling `listener` from the coordinated write's own promise: no promise of ours in between. */
  putNowThen(key: Uint8Array, value: Uint8Array, options: WriteOptions | undefined, listener: DurabilityListener, token: number): DurableNow | WouldWait | DurableLater {
    this.coordinator.write(putRequest(key, value, options ?? {})).then(
      () => listener.writeSettled(token, false, undefined),
      (error: unknown) => listener.writeSettled(token, true, error),
    );
    return durableLater;
  }

  /**
   * Without a context a delete supersedes what a read at the write's level
   * finds, so a stale coordinating replica cannot leave the value standing.
   */
  async delete(key: Uint8Array, options: WriteOptions = {}): Promise<void> {
    validateKey(key);
    let context = options.context ?? null;
    if (context === null) {
      const seen = await this.coordinator.read(key, {
        ...(options.w !== undefined ? { r: options.w } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
      // Nothing stored anywhere we asked: a tombstone would only be garbage to purge later.
      if (seen === undefined) return;
      context = encodeContext(seen.context);
    }
    await this.coordinator.write({ kind: 'delete', key, ...writeFields({ ...options, context }) });
  }

  async incrBy(key: Uint8Array, delta: bigint, options: WriteOptions = {}): Promise<bigint> {
    validateKey(key);
    validateExpiry(options.expiresAtMs);
    const out = await this.coordinator.write({ kind: 'incr', key, delta, ...writeFields(options), ...(options.expiresAtMs !== undefined ? { expiresAtMs: options.expiresAtMs } : {}) });
    if (out.count === null) throw new InvalidArgumentError(`The increment of ${describeKey(key)} returned no count`);
    return out.count;
  }

  async touch(key: Uint8Array, expiresAtMs: number | null, options: WriteOptions = {}): Promise<boolean> {
    validateKey(key);
    validateExpiry(expiresAtMs);
    const out = await this.coordinator.write({ kind: 'touch', key, ...writeFields(options), expiresAtMs });
    return out.touched;
  }

  scan(cursor: string, count: number): Promise<ScanResult> {
    return this.coordinator.scan(cursor, count);
  }

  approximateCount(): Promise<number> {
    return this.coordinator.approximateCount();
  }

  flushAll(): Promise<void> {
    return this.coordinator.flushAll();
  }
}

const settledVoid = (): void => undefined;

/**
 * A put's request, validated (throws what `put` rejects with). A lent key
 * and value (WriteOptions.lent: valid for the call only) are copied, since
 * the write keeps them across round trips.
 */
function putRequest(key: Uint8Array, value: Uint8Array, options: WriteOptions): ClientWrite {
  validateKey(key);
  validateValue(key, value);
  validateExpiry(options.expiresAtMs);
  if (options.lent === true) {
    key = Uint8Array.prototype.slice.call(key);
    value = Uint8Array.prototype.slice.call(value);
  }
  const request: ClientWrite = { kind: 'put', key, value, ...writeFields(options), expiresAtMs: options.expiresAtMs ?? null };
  if (options.overwrite === true) request.overwrite = true;
  return request;
}

function writeFields(options: WriteOptions): { context: Uint8Array | null; w?: WriteOptions['w']; strict: boolean; timeoutMs?: number } {
  // Refuse bytes ringkv did not issue here, before any replica sees them.
  contextFromClient(options.context);
  return {
    context: options.context ?? null,
    ...(options.w !== undefined ? { w: options.w } : {}),
    strict: options.strict === true,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };
}

// ---------------------------------------------------------------- wiring

export interface ClusterKvParts {
  env: { clock: Clock; random: Random; log: Logger };
  localId: NodeId;
  transport: Transport;
  /** The node's router; the `kv` prefix is registered on it. */
  router: MessageRouter;
  placement: Placement;
  liveness: NodeLiveness;
  store: ReplicaStore;
  /** The durable hint queue (HintStore behind `hintQueueOf`); absent: no sloppy quorum. */
  hints?: HintQueue;
  options?: CoordinatorOptions & HandoffOptions;
}

export interface ClusterReplication {
  kv: ClusterKv;
  coordinator: Coordinator<StoredObject>;
  handoff: HintedHandoff | undefined;
  /** Stops hint replay and refuses further requests. */
  stop(): Promise<void>;
}

/**
 * The oldest value or counter version's time in an encoded object (a hint's
 * age is measured from it), undefined when it holds only tombstones. A
 * tombstone that superseded that version is younger than it, so while this
 * age is below the grace period every such tombstone is still kept.
 */
export function oldestValueMs(object: Uint8Array): number | undefined {
  let oldest: number | undefined;
  for (const v of decodeObject(object).versions) if (v.kind !== 'tombstone' && (oldest === undefined || v.timestampMs < oldest)) oldest = v.timestampMs;
  return oldest;
}


/**
 * Wires one node's replication. Call once per node start; the returned
 * handoff is already started (it replays hints when liveness reports owners up).
 */
export function createClusterKv(parts: ClusterKvParts): ClusterReplication {
  const log = parts.env.log.child({ subsystem: 'replication' });
  const handoff =
    parts.hints === undefined
      ? undefined
      : new HintedHandoff(
          { localId: parts.localId, clock: parts.env.clock, transport: parts.transport, liveness: parts.liveness, queue: parts.hints, log, oldestValueMs },
          { ...parts.options, maxHintAgeMs: maxHintAgeFor(parts.store, parts.options) },
        );
  const coordinator = new Coordinator<StoredObject>(
    {
      localId: parts.localId,
      clock: parts.env.clock,
      random: parts.env.random,
      transport: parts.transport,
      log,
      placement: parts.placement,
      liveness: parts.liveness,
      backend: new ReplicaStoreBackend(parts.store, parts.env.clock),
      model: storedObjectModel,
      ...(handoff === undefined ? {} : { handoff }),
    },
    parts.options ?? {},
  );
  parts.router.register('kv', coordinator);
  handoff?.start();
  return {
    kv: new ClusterKv(coordinator, parts.env.clock),
    coordinator,
    handoff,
    async stop() {
      coordinator.close();
      await handoff?.stop();
    },
  };
}
