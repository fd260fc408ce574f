/**
 * KvApi for a single node (N = 1): every request is served by the local
 * ReplicaStore. Consistency levels are accepted for compatibility with the
 * cluster API; any level needing more than one replica fails the way a
 * cluster with too few replicas would, saying how many answered.
 */
import { CorruptionError, InvalidArgumentError, UnavailableError } from '../core/index.ts';
import type { Clock } from '../core/index.ts';
import { durableLater, durableNow, wouldWait } from './api.ts';
import type { Consistency, DurabilityListener, DurableLater, DurableNow, GetResult, KvApi, PutResult, ReadOptions, ScanResult, Sibling, Winner, WouldWait, WriteOptions } from './api.ts';
import { counterValue } from './counter.ts';
import { slotCount, validateKey } from './keys.ts';
import { decodeContext, encodeContext, isLive, mergedCounter } from './object.ts';
import type { StoredObject, Version } from './object.ts';
import type { ReplicaStore } from './replica-store.ts';
import type { WriteContext } from './vclock.ts';

/** Largest COUNT a scan accepts (bounds one reply). */
export const maxLocalScanCount = 100_000;
/** Engine entries read per scan page. */
const scanPageEntries = 256;

/**
 * How many replicas a consistency level asks for at a given replication
 * factor. Throws InvalidArgumentError for a number that is not a positive integer.
 */
export function requiredReplicas(level: Consistency | undefined, replicationFactor: number, fallback: Consistency = 'quorum'): number {
  const l = level ?? fallback;
  if (typeof l === 'number') {
    if (!Number.isInteger(l) || l < 1) throw new InvalidArgumentError(`Cannot use ${l} as a replica count: it must be a whole number of at least 1`);
    return l;
  }
  switch (l) {
    case 'one':
      return 1;
    case 'all':
      return replicationFactor;
    case 'quorum':
    case 'local_quorum':
      return Math.floor(replicationFactor / 2) + 1;
    default:
      throw new InvalidArgumentError(`Unknown consistency level ${JSON.stringify(l)}: use one, quorum, all, local_quorum or a number`);
  }
}

/**
 * What a read shows of an object: live versions only; concurrent counter
 * versions merged into one counter (their lane-wise maximum), and nothing at
 * all when every live version is a tombstone. The context covers every
 * version stored, expired ones included, so writing with it supersedes them.
 */
export function toGetResult(object: StoredObject | undefined, nowWallMs: number): GetResult {
  if (object === undefined) return { siblings: [], context: encodeContext([]) };
  const context = encodeContext(object.context);
  const live = object.versions.filter((v) => isLive(v, nowWallMs));
  if (!live.some((v) => v.kind !== 'tombstone')) return { siblings: [], context };
  const siblings: Sibling[] = [];
  const counters: Version[] = [];
  for (const v of live) {
    const base = { expiresAtMs: v.expiresAtMs, timestampMs: v.timestampMs, writer: v.dot.node };
    if (v.kind === 'value') siblings.push({ kind: 'value', value: v.value, ...base });
    else if (v.kind === 'tombstone') siblings.push({ kind: 'tombstone', ...base });
    else counters.push(v);
  }
  let newest: Version | undefined;
  for (const c of counters) {
    if (newest === undefined || c.timestampMs > newest.timestampMs || (c.timestampMs === newest.timestampMs && c.dot.node > newest.dot.node)) newest = c;
  }
  if (newest !== undefined) {
    siblings.push({ kind: 'counter', count: counterValue(mergedCounter(counters)), expiresAtMs: newest.expiresAtMs, timestampMs: newest.timestampMs, writer: newest.dot.node });
  }
  return { siblings, context };
}

/** A client's context bytes as a clock; bytes this store did not issue are the caller's mistake. */
export function contextFromClient(context: Uint8Array | null | undefined): WriteContext | null {
  if (context === undefined || context === null) return null;
  try {
    return decodeContext(context);
  } catch (error) {
    if (error instanceof CorruptionError) {
      throw new InvalidArgumentError(`Cannot use the causal context given (${context.length} bytes): it is not one ringkv issued. Pass back the context a read returned, unchanged`, { cause: error });
    }
    throw error;
  }
}

export function validateExpiry(expiresAtMs: number | null | undefined): void {
  if (expiresAtMs === undefined || expiresAtMs === null) return;
  if (!Number.isFinite(expiresAtMs) || expiresAtMs < 0) throw new InvalidArgumentError(`Cannot use expiry ${expiresAtMs}: it must be a time in epoch milliseconds`);
}

/** The store options of writes without an expiry, shared rather than built per write. */
const blindForever = Object.freeze({ expiresAtMs: null, overwrite: false });

export interface LocalKvOptions {
  store: ReplicaStore;
  clock: Clock;
}

export class LocalKv implements KvApi {
  /** This node is the only replica of every key. */
  readonly replicationFactor = 1;
  private readonly store: ReplicaStore;
  private readonly clock: Clock;

  constructor(options: LocalKvOptions) {
    this.store = options.store;
    this.clock = options.clock;
  }

  private requireOne(level: Consistency | undefined, verb: string): void {
    const needed = requiredReplicas(level, this.replicationFactor);
    if (needed > this.replicationFactor) {
      throw new UnavailableError(
        `Cannot ${verb}: only 1 of ${needed} replicas answered, as this node runs without replication (N = 1); ask for at most 1 replica`,
        { answered: 1, required: needed },
      );
    }
  }

  async get(key: Uint8Array, options: ReadOptions = {}): Promise<GetResult> {
    this.requireOne(options.r, 'read');
    validateKey(key);
    return toGetResult(await this.store.readRaw(key), this.clock.wallMs());
  }

  winnerNow(key: Uint8Array, options: ReadOptions = {}): Winner | undefined | WouldWait {
    this.requireOne(options.r, 'read');
    // The winner is replied at once, so its value may stay a view of the engine's copy.
    return this.store.winnerNow(key, options.nowWallMs ?? this.clock.wallMs());
  }

  putNow(key: Uint8Array, value: Uint8Array, options: WriteOptions = {}): Promise<void> | DurableNow | WouldWait {
    this.requireOne(options.w, 'write');
    validateExpiry(options.expiresAtMs);
    const expiresAtMs = options.expiresAtMs ?? null;
    if (options.overwrite === true) {
      // An overwrite ignores a context, but a malformed one is still the caller's mistake.
      if (options.context !== undefined && options.context !== null) contextFromClient(options.context);
      // A plain SET: only its durability matters here, so no outcome is built.
      return this.store.overwriteNow(key, value, expiresAtMs, options.lent === true);
    }
    if (options.lent === true) {
      // The general path keeps both in the objects it builds.
      key = Uint8Array.prototype.slice.call(key);
      value = Uint8Array.prototype.slice.call(value);
    }
    const storeOptions = expiresAtMs === null ? blindForever : { expiresAtMs, overwrite: false };
    const outcome = this.store.coordinatePutNow(key, value, contextFromClient(options.context), storeOptions);
    if (outcome === wouldWait) return wouldWait;
    return outcome.settled === true ? durableNow : outcome.durable;
  }

  putNowThen(key: Uint8Array, value: Uint8Array, options: WriteOptions | undefined, listener: DurabilityListener, token: number): DurableNow | WouldWait | DurableLater {
    const o = options ?? {};
    if (o.overwrite !== true || (o.context !== undefined && o.context !== null)) {
      const durable = this.putNow(key, value, o);
      if (durable === durableNow || durable === wouldWait) return durable;
      durable.then(
        () => listener.writeSettled(token, false, undefined),
        (error: unknown) => listener.writeSettled(token, true, error),
      );
      return durableLater;
    }
    this.requireOne(o.w, 'write');
    validateExpiry(o.expiresAtMs);
    // A plain SET: the store tells the listener from the reaction it has anyway.
    return this.store.overwriteNowThen(key, value, o.expiresAtMs ?? null, o.lent === true, listener, token);
  }

  async put(key: Uint8Array, value: Uint8Array, options: WriteOptions = {}): Promise<PutResult> {
    this.requireOne(options.w, 'write');
    validateExpiry(options.expiresAtMs);
    const outcome = await this.store.coordinatePut(key, value, contextFromClient(options.context), {
      expiresAtMs: options.expiresAtMs ?? null,
      overwrite: options.overwrite === true,
    });
    // Acknowledged only once durable: the store released the key's lock before the fsync.
    await outcome.durable;
    // Encoded on first use: a RESP SET never reads it.
    let context: Uint8Array | undefined;
    return {
      get context(): Uint8Array {
        context ??= encodeContext(outcome.context);
        return context;
      },
    };
  }

  async delete(key: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.requireOne(options.w, 'delete');
    const context = contextFromClient(options.context);
    const existing = await this.store.readRaw(key);
    // Nothing stored and nothing named: a tombstone would only be garbage to purge later.
    if (existing === undefined && context === null) return;
    // The only replica: no stale copy can resurrect the key, so a fully deleted key leaves no tombstone.
    await (await this.store.coordinateDelete(key, context, { keepTombstone: false })).durable;
  }

  async incrBy(key: Uint8Array, delta: bigint, options: WriteOptions = {}): Promise<bigint> {
    this.requireOne(options.w, 'increment');
    validateExpiry(options.expiresAtMs);
    const outcome = await this.store.coordinateIncr(key, delta, options.expiresAtMs === undefined ? {} : { expiresAtMs: options.expiresAtMs });
    await outcome.durable;
    return outcome.value;
  }

  async touch(key: Uint8Array, expiresAtMs: number | null, options: WriteOptions = {}): Promise<boolean> {
    this.requireOne(options.w, 'change the expiry');
    validateExpiry(expiresAtMs);
    const outcome = await this.store.coordinateTouch(key, expiresAtMs, contextFromClient(options.context));
    if (outcome === undefined) return false;
    await outcome.durable;
    return true;
  }

  /**
   * The cursor is the next partition (Redis slot) to read, in decimal so
   * redis-cli's --scan can parse it. A call returns whole partitions, so
   * a key present for the whole iteration is returned exactly once, and a
   * reply may hold more keys than `count` (as Redis's own SCAN may).
   */
  async scan(cursor: string, count: number): Promise<ScanResult> {
    if (!/^[0-9]{1,5}$/.test(cursor) || Number(cursor) >= slotCount) {
      throw new InvalidArgumentError(`Cannot resume a scan from cursor ${JSON.stringify(cursor)}: use "0" to start, then the cursor each reply returns`);
    }
    if (!Number.isInteger(count) || count < 1 || count > maxLocalScanCount) {
      throw new InvalidArgumentError(`Cannot scan ${count} keys at a time: the count must be a whole number from 1 to ${maxLocalScanCount}`);
    }
    const keys: Uint8Array[] = [];
    let lastPartition = -1;
    let after: Uint8Array | undefined;
    for (;;) {
      const page = await this.store.scanLocal({ fromPartition: Number(cursor), limit: scanPageEntries, ...(after === undefined ? {} : { after }) });
      for (const item of page.items) {
        if (keys.length >= count && item.partition !== lastPartition) return { cursor: String(item.partition), keys };
        keys.push(item.key);
        lastPartition = item.partition;
      }
      if (page.next === null) return { cursor: '0', keys };
      after = page.next;
    }
  }

  async approximateCount(): Promise<number> {
    return this.store.approximateKeys();
  }

  async flushAll(): Promise<void> {
    await this.store.clear();
  }
}
