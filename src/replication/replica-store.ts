/**
 * One node's replica of the data: versioned objects over a storage engine.
 *
 * Everything that changes a key on this node goes through here — writes this
 * node coordinates (`coordinate*`) and objects arriving from peers through
 * replication, read repair, hinted handoff and anti-entropy (`apply`, a merge
 * that is idempotent and order-independent). Operations on one key run one at
 * a time, so a read-modify-write (INCR, a put resolving siblings) cannot lose
 * a concurrent update made on this node.
 *
 * Durability contract. A key's lock covers deciding the new object and
 * handing it to the engine, not the engine's fsync:
 * - `coordinate*` resolve once the object is handed over; their outcome's
 *   `durable` resolves when the engine write resolves (after the WAL fsync
 *   under sync `always`) and rejects when it fails. Whoever acknowledges the
 *   write (LocalKv, the cluster coordinator) awaits `durable` first.
 * - `apply` awaits durability itself before resolving (after releasing the
 *   lock), so a caller acknowledging a replica write on its promise is safe.
 * - Until its engine write settles, a handed-over object sits in a pending
 *   map that the next locked read-modify-write of the key builds on. A key's
 *   engine writes are issued in decision order: one decided while an earlier
 *   write of the key is pending is issued after it, and fails with it (it
 *   carries the failed write's versions). A settled write leaves the map,
 *   so a failed version is never seen afterwards. The map finds writes by a
 *   hash of the storage key (no string per write); a plain SET's entry keeps
 *   only its encoded bytes and decodes them if its object is asked for. A
 *   plain SET left pending goes to the engine through `putCallback` when it
 *   offers it (no promise per write; the entry makes one only if asked), and
 *   its callback runs inside the engine's commit loop, after the write is
 *   applied and before the rest of its group is.
 * - `overwriteNowThen` (KvApi.putNowThen) tells a listener when a pending
 *   SET settles, from the reaction the pending entry has anyway, after the
 *   map, cache and memo were updated: its caller reacts to no promise.
 * - An engine that applies a write at once may answer with a promise that
 *   is already resolved (the LSM engine shares one under sync none). A write
 *   answered with a promise this store has seen resolved is settled as it is
 *   handed over (no pending entry; outcome `settled`), as nothing can fail
 *   it any more.
 * - `*Now` methods (`readRawNow`, `coordinatePutNow`) do the same work
 *   without a promise when nothing has to be waited for (no lock held, the
 *   object in memory or readable synchronously through the engine's
 *   `getNow`), else answer `wouldWait` having done nothing.
 * - Unlocked reads (`read`, `readRaw`, `readEncoded`, scans) see the engine
 *   and the object cache, which only hold durable objects: no read shows a
 *   write that could still fail.
 *
 * Reads. `readRaw` gives the object as stored, `read` without expired
 * versions, and `readEncoded` the bytes `encodeObject(read(key))` would give,
 * taken as stored from the engine when nothing in them expired (a replica
 * answering a peer sends them on without a decode and re-encode).
 * `winnerNow` (a RESP GET) asks the engine only, with a reused scratch
 * storage key, and reads an object of one plain version in place.
 *
 * A single node's plain SET (`overwriteNow`) reads only the superseded
 * object's clock entry and newest timestamp (in place, or from its memory
 * of what the last plain SET of the key wrote, which every other write of
 * the key and every failed write clears) and encodes the new object straight
 * into one buffer: the same bytes `coordinatePut` with `overwrite` stores.
 */
import { ConflictError, InvalidArgumentError, IoError, asBuffer, assert, bytesEqual, describeKey, fnv1a32, isRingkvError, CorruptionError } from '../core/index.ts';
import type { Clock, NodeId, Timer } from '../core/index.ts';
import type { Engine, EngineEntry } from '../storage/index.ts';
import { ReplicaBehindError, durableLater, durableNow, wouldWait } from './api.ts';
import type { DurabilityListener, DurableLater, DurableNow, Winner, WouldWait } from './api.ts';
import { incrementCounter, notAnIntegerMessage, parseInteger, counterValue } from './counter.ts';
import type { CounterState } from './counter.ts';
import { HybridClock, hlcTicks } from './hlc.ts';
import { StorageKeyScratch, dataRange, isDataKey, partitionOfStorageKey, partitionRange, slotCount, slotOf, storageKey, userKeyOf, validateKey, validateValue } from './keys.ts';
import {
  decodeObject,
  emptyObject,
  encodeMeta,
  encodeObject,
  encodedHasExpired,
  decodeSupersededBase,
  ownedObject,
  isLive,
  makeObject,
  normalizeObject,
  mergeObjects,
  mergedCounter,
  encodeDeadAfter,
  encodeSoleValue,
  mustDecode,
  peekSoleNodeBase,
  peekWinner,
  soleNodeBytes,
  sameObject,
  survivorsOf,
  winnerOf,
} from './object.ts';
import type { SoleNodeBase, StoredObject, Version } from './object.ts';
import { contextCovers, counterOf, coversDot, defaultClockPrunePolicy, descends, emptyClock, mergeClocks, plainClock, pruneClock, withDots } from './vclock.ts';
import type { ClockPrunePolicy, Dot, VClock, WriteContext } from './vclock.ts';

/** Concurrent versions one key may hold before a write without a resolving context is refused. */
export const defaultMaxSiblings = 64;
/** Tombstones and expired versions stay this long so a stale replica cannot resurrect them (Cassandra's gc_grace). */
export const defaultTombstoneGraceMs = 10 * 24 * 60 * 60 * 1000;
/** Largest encoded object a coordinated write may produce (siblings × values): the LSM engine's value limit. */
export const maxObjectBytes = 16 * 1024 * 1024;
/** Memory a store spends by default on decoded objects it read or wrote recently (an estimate of heap bytes). */
export const defaultObjectCacheBytes = 16 * 1024 * 1024;
/** Reads that miss the cache and enter it: one in (mask + 1). */
const cacheAdmitMask = 7;
/** Objects estimated larger than this are not cached (a few would evict everything else). */
const maxCachedObjectBytes = 256 * 1024;
/**
 * Rough heap cost of one cached object and of each version beyond its value
 * bytes (the objects, arrays, views and Map entry behind one key; measured
 * RSS grew faster than a tighter count suggested, so these err high).
 */
const cachedObjectOverheadBytes = 400;
const cachedVersionOverheadBytes = 300;
/** A written value that is a view of a buffer larger than itself by more than this is copied before it is kept. */
const pinnableBytes = 256;
/** Engine entries a purge or clear pass reads per batch. */
const purgeBatchEntries = 512;

export interface ReplicaStoreOptions {
  engine: Engine;
  clock: Clock;
  nodeId: NodeId;
  /** One hybrid clock per node; pass the node's so every subsystem stamps from it. */
  hlc?: HybridClock;
  maxSiblings?: number;
  tombstoneGraceMs?: number;
  clockPolicy?: ClockPrunePolicy;
  /** Heap bytes for decoded objects kept in memory (0: no cache); default defaultObjectCacheBytes. */
  objectCacheBytes?: number;
}

export interface StoreWriteOptions {
  /** Absolute expiry in epoch ms; null: none. */
  expiresAtMs?: number | null;
  /** coordinatePut only: supersede everything this replica holds (the context is ignored). */
  overwrite?: boolean;
}

/** What a coordinated write did. */
export interface StoreWriteOutcome {
  /** The whole object now stored (send this to the other replicas). */
  object: StoredObject;
  /** The versions this write created. */
  written: Version[];
  /** The write's own causal context: what it superseded plus its new versions (for PutResult). */
  context: WriteContext;
  /**
   * Resolves once the engine holds the write durably (after the WAL fsync
   * under sync `always`); rejects when the engine refused it. The outcome
   * itself resolves earlier, as soon as the object is decided and handed to
   * the engine, so the key's lock is not held across the fsync. Whoever
   * acknowledges the write to a client must await this first.
   */
  durable: Promise<void>;
  /** True when `durable` had already resolved when the write was handed over (nothing to wait for). */
  readonly settled?: boolean;
  /** `encodeObject(object)`, the bytes the write handed to the engine, when the store has them (the coordinator sends them to the peers as they are). */
  readonly encoded?: Uint8Array;
  /**
   * Present on outcomes not `settled`: instead of awaiting `durable`, tells
   * `listener` once, with `token`, when the write settles (never inside this
   * call). A waiter that uses it does not read `durable`, which is then never
   * made: no promise or reaction per write.
   */
  whenDurable?(listener: DurabilityListener, token: number): void;
}

export interface StoreIncrOutcome extends StoreWriteOutcome {
  /** The counter's value on this replica after the increment. */
  value: bigint;
}

export interface ScanLocalOptions {
  /** First partition to scan (default 0). */
  fromPartition?: number;
  /** Partition to stop before (default: through the last). */
  toPartition?: number;
  /** Resume strictly after this storage key (from a previous page's `next`). */
  after?: Uint8Array;
  /** Engine entries read for this page at most (dead ones count too, to bound the work). */
  limit: number;
  /** Include objects with no live version (tombstones, expired): anti-entropy and streaming need them. */
  includeDead?: boolean;
}

export interface ScanItem {
  key: Uint8Array;
  partition: number;
  /** The object as stored when includeDead, else with expired versions removed. */
  object: StoredObject;
}

export interface ScanPage {
  items: ScanItem[];
  /** Storage key to pass as `after` for the next page; null when the range is exhausted. */
  next: Uint8Array | null;
}

export interface PurgeResult {
  versionsDropped: number;
  keysRemoved: number;
  keysScanned: number;
}

export interface ReplicaStoreStats {
  coordinatedWrites: number;
  appliedMerges: number;
  /** Merges that changed nothing (duplicates, already-seen objects). */
  noopMerges: number;
  siblingLimitRejections: number;
}

/** A write handed to the engine and not yet settled, under its storage key in the pending map. */
interface PendingWrite {
  readonly object: StoredObject | undefined;
  readonly durable: Promise<void>;
  readonly skey: Uint8Array;
  /** The next pending write whose key has the same hash (PendingMap's chain). */
  next: PendingWrite | undefined;
  /** Told when the write settles (overwriteNowThen, a coordinated write's or apply's waiter), with its token; set before the call that handed the write over returns. */
  listener: DurabilityListener | undefined;
  token: number;
  /** How it settled, once it has (a listener attached later is told from a reaction). */
  done: WriteSettlement | undefined;
}

interface WriteSettlement {
  readonly failed: boolean;
  readonly error: unknown;
}

const settledOk: WriteSettlement = Object.freeze({ failed: false, error: undefined });

/**
 * A pending write that keeps the encoded object it handed to the engine
 * (which holds those bytes until the write settles anyway), decoded only if
 * something reads the object (a write or merge of the key before this one
 * settles, or a cache refresh of a key the cache holds, for which the
 * object is kept as it was built). A write waiting for its fsync keeps one
 * small object alive instead of the decided object's tree (versions, dots,
 * clock entries, boxed numbers), which a young-generation collection in the
 * middle of the group commit would otherwise promote.
 */
class PendingBytes implements PendingWrite {
  next: PendingWrite | undefined = undefined;
  done: WriteSettlement | undefined = undefined;
  /** For a write reported through Engine.putCallback: how it settled (undefined: not yet), and the promise made if someone asked for one. */
  private outcome: { error: Error | undefined } | undefined;
  private settleMade: ((error: Error | undefined) => void) | undefined;

  constructor(
    /** The engine's promise (Engine.put); undefined for putCallback, made only when asked for. */
    private promise: Promise<void> | undefined,
    readonly skey: Uint8Array,
    /** The encoded object handed to the engine; undefined: the key was removed. */
    private readonly bytes: Uint8Array | undefined,
    public listener: DurabilityListener | undefined,
    public token: number,
    /** The object as built, kept only when something will read it (the key is cached). */
    private built?: StoredObject,
  ) {}

  get durable(): Promise<void> {
    if (this.promise !== undefined) return this.promise;
    const outcome = this.outcome;
    if (outcome !== undefined) return (this.promise = outcome.error === undefined ? resolved : Promise.reject(outcome.error));
    return (this.promise = new Promise<void>((resolve, reject) => {
      this.settleMade = (error) => (error === undefined ? resolve() : reject(error));
    }));
  }

  get object(): StoredObject | undefined {
    if (this.bytes === undefined) return undefined;
    return (this.built ??= decodeObject(this.bytes));
  }

  /** The putCallback write settled (called once). */
  settledWith(error: Error | undefined): void {
    this.outcome = { error };
    this.settleMade?.(error);
  }
}

/** Buckets of a new PendingMap; it doubles once it holds more writes than buckets. */
const pendingInitialBuckets = 256;

/**
 * Pending writes by storage key, found by a 32-bit hash of the key (as the
 * object cache finds its slots) instead of a string of it: under sync
 * `always` every write is pending for a group commit, and a string per
 * write cost an allocation and a hash of its own. Keys sharing a bucket
 * chain through `next`; the key is compared before an entry is used.
 *
 * Why an array of buckets, not a Map: a Map under a set and a delete per
 * write rebuilds its hash table every few dozen writes, and V8 links each
 * replaced table, entries and all, to its successor; once one is promoted,
 * the chain keeps the pending writes of every later table, with all they
 * reference, alive through young-generation collections (measured with
 * the coordinator's DeadlineSet: see there). The array is replaced only
 * when it doubles.
 */
class PendingMap {
  private heads: Array<PendingWrite | undefined> = new Array<PendingWrite | undefined>(pendingInitialBuckets).fill(undefined);
  private mask = pendingInitialBuckets - 1;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(skey: Uint8Array): PendingWrite | undefined {
    if (this.count === 0) return undefined;
    for (let e = this.heads[fnv1a32(skey) & this.mask]; e !== undefined; e = e.next) if (bytesEqual(e.skey, skey)) return e;
    return undefined;
  }

  has(skey: Uint8Array): boolean {
    return this.get(skey) !== undefined;
  }

  /** `entry` becomes its key's pending write, replacing the one before it (which then settles unseen). */
  set(entry: PendingWrite): void {
    if (this.count >= this.heads.length) this.grow();
    const bucket = fnv1a32(entry.skey) & this.mask;
    let head = this.heads[bucket];
    if (head !== undefined && bytesEqual(head.skey, entry.skey)) {
      const replaced = head;
      head = head.next;
      replaced.next = undefined;
      this.count--;
    } else {
      for (let e = head; e !== undefined; e = e.next) {
        const after = e.next;
        if (after !== undefined && bytesEqual(after.skey, entry.skey)) {
          e.next = after.next;
          after.next = undefined;
          this.count--;
          break;
        }
      }
    }
    entry.next = head;
    this.heads[bucket] = entry;
    this.count++;
  }

  /** Removes `entry` if it is still its key's pending write. */
  deleteIf(entry: PendingWrite): void {
    if (this.count === 0) return;
    const bucket = fnv1a32(entry.skey) & this.mask;
    const head = this.heads[bucket];
    if (head === entry) {
      this.heads[bucket] = entry.next;
      entry.next = undefined;
      this.count--;
      return;
    }
    for (let e = head; e !== undefined; e = e.next) {
      if (e.next === entry) {
        e.next = entry.next;
        entry.next = undefined;
        this.count--;
        return;
      }
    }
  }

  values(): PendingWrite[] {
    const all: PendingWrite[] = [];
    for (const head of this.heads) for (let e: PendingWrite | undefined = head; e !== undefined; e = e.next) all.push(e);
    return all;
  }

  private grow(): void {
    const entries = this.values();
    const length = this.heads.length * 2;
    this.heads = new Array<PendingWrite | undefined>(length).fill(undefined);
    this.mask = length - 1;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i] as PendingWrite;
      const bucket = fnv1a32(e.skey) & this.mask;
      e.next = this.heads[bucket];
      this.heads[bucket] = e;
    }
  }
}

/** What apply decided: the object now stored and when its write is durable. */
interface MergeResult {
  object: StoredObject;
  durable: Promise<void>;
}

/** A new write's identity and time. */
interface Stamp {
  dot: Dot;
  timestampMs: number;
}

/** The storage key as a flat string (the lock, pending and cache key; a concatenation would be flattened by every Map lookup). */
function storageId(skey: Uint8Array): string {
  return asBuffer(skey).toString('latin1');
}

function estimateBytes(object: StoredObject): number {
  let bytes = cachedObjectOverheadBytes + 48 * object.context.length;
  for (const v of object.versions) bytes += cachedVersionOverheadBytes + v.value.length + 64 * v.counter.length;
  return bytes;
}

interface CacheEntry {
  /** The storage key, an own copy (the caller's may view a larger buffer). */
  readonly skey: Uint8Array;
  readonly object: StoredObject;
  readonly bytes: number;
}

/**
 * Decoded objects by storage key, so reads and read-modify-writes of keys
 * read often skip the engine lookup and the decode. Keys enter on a read
 * miss (one in eight); a write keeps a cached key current once its engine
 * write settles, so the cache holds only what the engine holds durably and a
 * read never shows a write that could still fail. Oldest-inserted goes first
 * when over budget.
 *
 * Slots are found by a 32-bit hash of the storage key, not by a string of
 * it (building that string cost more than the rest of a cached lookup); the
 * key is compared before an entry is used, and a key hashing to a taken slot
 * evicts its holder, which a cache may always do.
 */
class ObjectCache {
  private readonly map = new Map<number, CacheEntry>();
  /**
   * Eviction resumes where it stopped: a fresh iteration would first step
   * over every slot already deleted at the front of the Map (quadratic).
   */
  private oldest: MapIterator<[number, CacheEntry]> = this.map.entries();
  private bytes = 0;

  constructor(private readonly budgetBytes: number) {}

  get size(): number {
    return this.map.size;
  }

  /** True when the key is cached (refresh and delete would act on it). */
  holds(skey: Uint8Array): boolean {
    if (this.map.size === 0) return false;
    const entry = this.map.get(fnv1a32(skey));
    return entry !== undefined && bytesEqual(entry.skey, skey);
  }

  get(skey: Uint8Array): StoredObject | undefined {
    if (this.map.size === 0) return undefined;
    const entry = this.map.get(fnv1a32(skey));
    return entry !== undefined && bytesEqual(entry.skey, skey) ? entry.object : undefined;
  }

  /** A written object replaces the key's cached one; a key not cached stays out. */
  refresh(skey: Uint8Array, object: StoredObject): void {
    if (this.map.size === 0) return;
    const slot = fnv1a32(skey);
    const entry = this.map.get(slot);
    if (entry === undefined || !bytesEqual(entry.skey, skey)) return;
    // Its values may be views of larger buffers until now.
    this.setAt(slot, entry, skey, ownedObject(object, pinnableBytes));
  }

  set(skey: Uint8Array, object: StoredObject): void {
    const slot = fnv1a32(skey);
    this.setAt(slot, this.map.get(slot), skey, object);
  }

  private setAt(slot: number, previous: CacheEntry | undefined, skey: Uint8Array, object: StoredObject): void {
    if (previous !== undefined) {
      this.map.delete(slot);
      this.bytes -= previous.bytes;
    }
    const bytes = estimateBytes(object);
    if (bytes > maxCachedObjectBytes || bytes > this.budgetBytes) return;
    const own = previous !== undefined && bytesEqual(previous.skey, skey) ? previous.skey : Uint8Array.prototype.slice.call(skey);
    this.map.set(slot, { skey: own, object, bytes });
    this.bytes += bytes;
    while (this.bytes > this.budgetBytes) {
      let next = this.oldest.next();
      if (next.done === true) {
        this.oldest = this.map.entries();
        next = this.oldest.next();
        if (next.done === true) return;
      }
      const [oldest, entry] = next.value;
      this.map.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  delete(skey: Uint8Array): void {
    if (this.map.size === 0) return;
    const slot = fnv1a32(skey);
    const entry = this.map.get(slot);
    if (entry === undefined || !bytesEqual(entry.skey, skey)) return;
    this.map.delete(slot);
    this.bytes -= entry.bytes;
  }

  clear(): void {
    this.map.clear();
    this.oldest = this.map.entries();
    this.bytes = 0;
  }
}

/** Sets of the overwrite memo (a power of two), of two 32-byte slots each: 8 MiB. */
const overwriteMemoSetBits = 17;
const overwriteMemoSets = 1 << overwriteMemoSetBits;

/**
 * Of the storage key memoHash hashed last (module state: no object per
 * write): its set's first index in the memo's array, and its check hash.
 */
let memoSetAt = 0;
let memoCheckHash = 0;

function memoHash(skey: Uint8Array): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < skey.length; i++) {
    const c = skey[i] as number;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  const slotHash = a >>> 0;
  memoSetAt = (slotHash & (overwriteMemoSets - 1)) * 8;
  // The second hash (low bit set: 0 marks an empty slot) and the first's 15 bits above the set index.
  memoCheckHash = (((b ^ skey.length) | 1) >>> 0) * 0x8000 + (slotHash >>> overwriteMemoSetBits);
}

/**
 * What a single node's plain SET needs of the object it supersedes (its one
 * clock entry and newest timestamp), remembered for keys whose last write
 * was such a SET, so the next SET of the key skips the engine read. Every
 * other write of a key forgets it (handOff), and so does a failed write, so
 * an entry always describes what the engine holds for its key.
 *
 * Two-way set associative by a hash of the storage key, least recently used
 * way evicted, and checked by 46 further hash bits. Direct-mapped (session
 * 9), a third of the keys of a 100,000-key workload shared their slot with
 * another that overwrote it between two of their SETs, and each such SET
 * read the engine; with two ways about one in fifteen does. A false match
 * (about one in 3.5·10^13 lookups of a set other keys hold) could only hand
 * a SET another key's counter and times, which it takes a maximum with: the
 * new dot still grows with the hybrid clock (hlcTicks), so it stays unique.
 * Typed arrays: nothing for the garbage collector to trace, however many keys.
 */
class OverwriteMemo {
  /**
   * Per set, two slots side by side (most recently used first), so a lookup
   * touches one or two cache lines; per slot: check hash (0: empty), counter,
   * last wall time, newest timestamp.
   */
  private readonly slots = new Float64Array(overwriteMemoSets * 8);

  /** The slot, check hash and outcome of the key `find` looked up last, for `rememberFound` (no second hash of the key). */
  private foundAt = 0;
  private foundCheck = 0;
  private foundHit = false;

  /** Fills `into` and answers true when the key's last write was a remembered overwrite. */
  find(skey: Uint8Array, into: SoleNodeBase): boolean {
    memoHash(skey);
    const at = memoSetAt;
    const check = memoCheckHash;
    this.foundAt = at;
    this.foundCheck = check;
    const slots = this.slots;
    if (slots[at] === check) {
      this.foundHit = true;
    } else if (slots[at + 4] === check) {
      // The second way becomes the most recently used: swap the two slots.
      for (let i = at; i < at + 4; i++) {
        const held = slots[i] as number;
        slots[i] = slots[i + 4] as number;
        slots[i + 4] = held;
      }
      this.foundHit = true;
    } else {
      this.foundHit = false;
      return false;
    }
    into.counter = slots[at + 1] as number;
    into.lastWallMs = slots[at + 2] as number;
    into.newestTimestampMs = slots[at + 3] as number;
    return true;
  }

  /** Remembers the object just written for the key `find` looked up last, in its set's first slot. */
  rememberFound(counter: number, lastWallMs: number, timestampMs: number): void {
    const at = this.foundAt;
    const slots = this.slots;
    if (!this.foundHit) {
      // A new key for the set: the first slot's key moves to the second, whose key is dropped.
      for (let i = at; i < at + 4; i++) slots[i + 4] = slots[i] as number;
      this.foundHit = true;
    }
    slots[at] = this.foundCheck;
    slots[at + 1] = counter;
    slots[at + 2] = lastWallMs;
    slots[at + 3] = timestampMs;
  }

  forget(skey: Uint8Array): void {
    memoHash(skey);
    const at = memoSetAt;
    const slots = this.slots;
    if (slots[at] === memoCheckHash) slots[at] = 0;
    else if (slots[at + 4] === memoCheckHash) slots[at + 4] = 0;
  }

  clear(): void {
    this.slots.fill(0);
  }
}

/**
 * What both write outcomes below say about durability, from the pending
 * entry the write handed over (or `durableNow`): no promise is made unless
 * someone reads `durable`.
 */
abstract class HandedOverWrite {
  constructor(private readonly entry: PendingWrite | DurableNow) {}

  get settled(): boolean {
    return this.entry === durableNow;
  }

  get durable(): Promise<void> {
    return this.entry === durableNow ? resolved : this.entry.durable;
  }

  whenDurable(listener: DurabilityListener, token: number): void {
    whenSettled(this.entry, listener, token);
  }
}

/** A coordinated write's outcome; its context is computed on first use (a single-node SET never asks for it). */
class CoordinatedWrite extends HandedOverWrite implements StoreWriteOutcome {
  private computed: WriteContext | undefined;

  constructor(
    readonly object: StoredObject,
    readonly written: Version[],
    entry: PendingWrite | DurableNow,
    private readonly compute: () => WriteContext,
    readonly encoded: Uint8Array,
  ) {
    super(entry);
  }

  get context(): WriteContext {
    return (this.computed ??= this.compute());
  }
}

/** Tells `listener` when a handed-over write settles: through its pending entry (set before anything can settle it). */
function whenSettled(entry: PendingWrite | DurableNow, listener: DurabilityListener, token: number): void {
  const done = entry === durableNow ? settledOk : entry.done;
  if (done !== undefined || entry === durableNow) {
    // Settled already (as it was handed over, or before an asynchronous outcome reached its waiter): told from a reaction, never inside the call.
    void resolved.then(() => listener.writeSettled(token, done?.failed ?? false, done?.error));
    return;
  }
  entry.listener = listener;
  entry.token = token;
}

/**
 * `bytes` (what `incoming` was decoded from) when `object` is `incoming`
 * field by field, so the bytes decode to exactly the object being stored.
 * Else undefined: handOff encodes `object`.
 */
function asEncoded(object: StoredObject, incoming: StoredObject, bytes: Uint8Array | undefined): Uint8Array | undefined {
  return bytes !== undefined && sameObject(object, incoming) ? bytes : undefined;
}

/** decideOverwrite's outcome: its context computed on first use from fields, not a closure. */
class OverwriteOutcome extends HandedOverWrite implements StoreWriteOutcome {
  private computed: WriteContext | undefined;

  constructor(
    private readonly store: ReplicaStore,
    readonly object: StoredObject,
    readonly written: Version[],
    entry: PendingWrite | DurableNow,
    private readonly seen: VClock,
    private readonly merged: VClock,
    private readonly wall: number,
    readonly encoded: Uint8Array,
  ) {
    super(entry);
  }

  get context(): WriteContext {
    return (this.computed ??= this.store.overwriteContext(this.seen, this.written, this.merged, this.wall));
  }
}

/**
 * `mergeClocks(clock, [{ node, counter, lastWallMs }])` for a counter above
 * the clock's own for `node` (a new dot of this node): no temporary clock.
 */
function advanceClock(clock: VClock, node: NodeId, counter: number, lastWallMs: number): VClock {
  const only = clock.length === 1 ? clock[0] : undefined;
  if (only !== undefined && only.node === node) return [{ node, counter: Math.max(only.counter, counter), lastWallMs: Math.max(only.lastWallMs, lastWallMs) }];
  return mergeClocks(clock, [{ node, counter, lastWallMs }]);
}

const noVersions: readonly Version[] = Object.freeze([]) as readonly Version[];
const overwriteForever: StoreWriteOptions = Object.freeze({ expiresAtMs: null, overwrite: true });

/** A copy of bytes lent for one call (WriteOptions.lent) that a write keeps. */
function ownedCopy(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

/** True when the object's context covers each of its versions (always, for an object this layer built or decoded). */
function coversAll(object: StoredObject): boolean {
  for (const v of object.versions) if (!coversDot(object.context, v.dot)) return false;
  return true;
}

/** Latest first by (timestamp, writer): the same order as resolveWinner. */
function newestFirst(a: Version, b: Version): number {
  if (a.timestampMs !== b.timestampMs) return b.timestampMs - a.timestampMs;
  return a.dot.node < b.dot.node ? 1 : a.dot.node > b.dot.node ? -1 : 0;
}

export class ReplicaStore {
  readonly nodeId: NodeId;
  readonly hlc: HybridClock;
  readonly maxSiblings: number;
  readonly tombstoneGraceMs: number;
  private readonly engine: Engine;
  /** The engine's synchronous point lookup when it has one (the LSM engine answers from memory or the page cache). */
  private readonly clock: Clock;
  private readonly clockPolicy: ClockPrunePolicy;
  private readonly locks = new Map<string, Promise<void>>();
  /**
   * Objects handed to the engine whose put has not resolved yet, by storage
   * key, so a later locked read-modify-write of the key builds on them (an
   * entry's object is undefined when the key was removed). An entry leaves when its
   * engine write settles (it is then readable from the engine, or failed).
   */
  private readonly pending = new PendingMap();
  private readonly cache: ObjectCache;
  /**
   * An engine that applies a write at once may answer every such write with
   * one shared, already-resolved promise (the LSM engine under sync none).
   * A promise handed back for two writes in a row is taken for such a shared
   * one; once seen resolved, a write answered with it is settled as it is
   * handed over, with no pending entry and no callback. Fresh promises (sync
   * always, the engine's occasional yield) never repeat, so they never
   * displace it.
   */
  private lastHandedBack: Promise<void> | undefined;
  private sharedPromise: Promise<void> | undefined;
  private sharedFulfilled: Promise<void> | undefined;
  /**
   * Whether the last write handed over settled at once (sync none; read
   * right after the hand-over too): the next one then uses Engine.put,
   * whose shared resolved promise costs nothing; else putCallback.
   */
  private lastSettledAtOnce = false;
  /**
   * Bumped whenever a write is handed over or settles: a read that started
   * before a bump may have seen either side of it, so it does not fill the cache.
   */
  private writeSeq = 0;
  private cacheMisses = 0;
  /** This node's id as bytes for the single-node overwrite (undefined when not short ASCII: the general path). */
  private readonly nodeIdBytes: Uint8Array | undefined;
  /** What overwriteNow reads of the object it supersedes (one at a time). */
  private readonly base: SoleNodeBase = { counter: 0, lastWallMs: 0, newestTimestampMs: 0 };
  /** overwriteNow's memory of the objects it wrote, made on first use (a store that never sees a plain SET spends nothing). */
  private memo: OverwriteMemo | undefined;
  /** Storage keys of synchronous lookups (readRawNow, winnerNow), built without an allocation. */
  private readonly lookupKey = new StorageKeyScratch();
  private readonly counters: ReplicaStoreStats = { coordinatedWrites: 0, appliedMerges: 0, noopMerges: 0, siblingLimitRejections: 0 };

  constructor(options: ReplicaStoreOptions) {
    this.engine = options.engine;
    this.clock = options.clock;
    this.nodeId = options.nodeId;
    this.hlc = options.hlc ?? new HybridClock(options.clock);
    this.maxSiblings = options.maxSiblings ?? defaultMaxSiblings;
    this.tombstoneGraceMs = options.tombstoneGraceMs ?? defaultTombstoneGraceMs;
    this.clockPolicy = options.clockPolicy ?? defaultClockPrunePolicy;
    this.cache = new ObjectCache(options.objectCacheBytes ?? defaultObjectCacheBytes);
    this.nodeIdBytes = soleNodeBytes(this.nodeId);
    assert(this.nodeId.length > 0, 'a replica store needs a node id');
    assert(this.maxSiblings >= 1, 'maxSiblings must be at least 1');
  }

  stats(): ReplicaStoreStats {
    return { ...this.counters };
  }

  /** Engine estimate of stored keys (tombstones included until purged). */
  approximateKeys(): number {
    return this.engine.stats().approximateKeys;
  }

  // ------------------------------------------------------------ reads

  /** The object exactly as stored (tombstones and expired versions included), or undefined. */
  readRaw(key: Uint8Array): Promise<StoredObject | undefined> {
    try {
      validateKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const skey = storageKey(key);
    const cached = this.cache.get(skey);
    return cached !== undefined ? Promise.resolve(cached) : this.loadAndCache(key, skey);
  }

  /**
   * `readRaw` answered now, without a promise, or `wouldWait` when the
   * object is neither cached nor readable synchronously from the engine.
   * Throws what `readRaw` would reject with. Values may be views of a
   * buffer this call read for the caller alone (it stays valid).
   */
  readRawNow(key: Uint8Array): StoredObject | undefined | WouldWait {
    validateKey(key);
    const skey = this.lookupKey.of(key);
    const cached = this.cache.get(skey);
    if (cached !== undefined) return cached;
    const entry = this.lookupNow(skey);
    if (entry === wouldWait || entry === undefined) return entry;
    // getNow's entry is this call's own copy, never reused by the engine: values
    // may be views of it (a decode without a copy per value); the cache admits
    // an owned copy (decodeAndAdmit).
    return this.decodeAndAdmit(key, skey, entry, true);
  }

  /**
   * `winnerOf(readRawNow(key, true), nowWallMs)`: the winner a RESP GET
   * shows, now, or `wouldWait`. It reads the engine only (the object cache
   * only when the engine has no synchronous lookup): the object cache
   * never holds anything newer than the engine (a write enters it once its
   * engine write settled), and for GETs it cost more than it saved (with
   * 100 000 uniformly read keys, 4.5 µs per GET with it, 3.0 µs without:
   * the lookups, the decodes of admitted objects, and the garbage collector
   * marking them). An object of one plain version (the common case) is read
   * in place (peekWinner: the value a view of the engine's bytes, nothing
   * decoded); any other shape is decoded. Use the winner at once.
   */
  winnerNow(key: Uint8Array, nowWallMs: number): Winner | undefined | WouldWait {
    validateKey(key);
    const skey = this.lookupKey.of(key);
    if (this.engine.getNow === undefined) {
      // No synchronous engine lookup: the cache is all that can answer now.
      const cached = this.cache.get(skey);
      return cached === undefined ? wouldWait : winnerOf(cached, nowWallMs);
    }
    // Views: the winner is copied into the reply before the engine is called again.
    const entry = this.lookupViewNow(skey);
    if (entry === wouldWait || entry === undefined) return entry;
    const peeked = peekWinner(entry.value, nowWallMs);
    return peeked !== mustDecode ? peeked : winnerOf(this.decodeEntry(key, entry, true), nowWallMs);
  }

  /** A lookup's entry decoded, and admitted to the cache one miss in eight. `skey` may be scratch: the cache copies it. */
  private decodeAndAdmit(key: Uint8Array, skey: Uint8Array, entry: EngineEntry, transient: boolean): StoredObject {
    // A transient reader (a RESP GET replying at once) gets values as views of the engine's copy.
    const object = this.decodeEntry(key, entry, transient);
    // Same admission as loadAndCache; nothing can interleave here, but a key
    // with a write in flight may hold what that write has yet to settle.
    if ((++this.cacheMisses & cacheAdmitMask) === 0 && !this.pending.has(skey)) {
      this.cache.set(skey, transient ? ownedObject(object, pinnableBytes) : object);
    }
    return object;
  }

  /** The engine entry now, or `wouldWait` when the engine has no synchronous lookup (or it failed: the asynchronous path reports why). */
  private lookupNow(skey: Uint8Array): EngineEntry | undefined | WouldWait {
    if (this.engine.getNow === undefined) return wouldWait;
    try {
      return this.engine.getNow(skey);
    } catch {
      return wouldWait;
    }
  }

  /**
   * lookupNow for a caller done with the entry before its next call into the
   * engine (it keeps nothing of the entry's bytes, or only copies): the
   * engine's views when it offers them (getNowView), no copies.
   */
  private lookupViewNow(skey: Uint8Array): EngineEntry | undefined | WouldWait {
    const engine = this.engine;
    if (engine.getNowView === undefined) return this.lookupNow(skey);
    try {
      return engine.getNowView(skey);
    } catch {
      return wouldWait;
    }
  }

  /** Reads the engine; the result enters the cache unless a write happened meanwhile. */
  private async loadAndCache(key: Uint8Array, skey: Uint8Array): Promise<StoredObject | undefined> {
    const seq = this.writeSeq;
    const object = await this.load(key, skey);
    // One miss in eight is admitted: a key read often gets in soon, while a
    // uniform workload over more keys than fit does not churn the cache on every read.
    if (object !== undefined && seq === this.writeSeq && (++this.cacheMisses & cacheAdmitMask) === 0) this.cache.set(skey, object);
    return object;
  }

  /** The object with expired versions removed (tombstones kept: they carry deletes), or undefined. */
  async read(key: Uint8Array): Promise<StoredObject | undefined> {
    const raw = await this.readRaw(key);
    return raw === undefined ? undefined : this.withoutExpired(raw);
  }

  /**
   * Exactly `encodeObject(await this.read(key))` (undefined when `read` gives
   * undefined), for a replica answering a peer's read without a decode and
   * re-encode: the engine's bytes as stored when no version in them has
   * expired, else the live part re-encoded. Like `read`, it shows durable
   * objects only (a cached object is encoded, as the cache and the engine
   * agree on it). It does not fill the object cache.
   */
  readEncoded(key: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      validateKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const skey = storageKey(key);
    const cached = this.cache.get(skey);
    if (cached !== undefined) return Promise.resolve(encodeObject(this.withoutExpired(cached)));
    return this.engine.get(skey).then((entry) => {
      if (entry === undefined) return undefined;
      if (!encodedHasExpired(entry.value, this.clock.wallMs())) return entry.value;
      return encodeObject(this.withoutExpired(this.decodeEntry(key, entry)));
    });
  }

  private withoutExpired(object: StoredObject): StoredObject {
    const now = this.clock.wallMs();
    if (object.versions.every((v) => isLive(v, now))) return object;
    return { context: object.context, versions: object.versions.filter((v) => isLive(v, now)) };
  }

  private async load(key: Uint8Array, skey: Uint8Array): Promise<StoredObject | undefined> {
    const entry = await this.engine.get(skey);
    return entry === undefined ? undefined : this.decodeEntry(key, entry);
  }

  private decodeEntry(key: Uint8Array, entry: EngineEntry, viewValues = false): StoredObject {
    try {
      return decodeObject(entry.value, viewValues);
    } catch (error) {
      if (error instanceof CorruptionError) throw new CorruptionError(`Key ${describeKey(key)} on ${this.nodeId}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  // ------------------------------------------------------------ replication

  /**
   * Merges an object from a peer (replication, read repair, hint replay,
   * anti-entropy) into the stored one and persists the result. Idempotent;
   * the merge is order-independent, so replicas converge. Never refuses for
   * the sibling limit: convergence comes first (docs/consistency.md).
   * `incomingBytes`, when given, is `incoming` as it came encoded: stored as
   * it is when the merge result is `incoming` itself (the common case of a
   * replica receiving a newer version), instead of encoding it again.
   */
  apply(key: Uint8Array, incoming: StoredObject, incomingBytes?: Uint8Array): Promise<StoredObject> {
    let skey: Uint8Array;
    let id: string | undefined;
    try {
      validateKey(key);
      skey = storageKey(key);
      // The id string only when a lock could be found under it.
      id = this.locks.size === 0 ? undefined : storageId(skey);
      // Unlocked with the stored object in memory or readable synchronously: decided
      // now, without the lock's promises (nothing can interleave, as under the lock).
      if (id === undefined || !this.locks.has(id)) {
        const pending = this.pending.get(skey);
        let stored: StoredObject | undefined;
        if (pending !== undefined) stored = pending.object;
        else {
          stored = this.cache.get(skey);
          if (stored === undefined) {
            // Views: decoded into copies before the engine is called again.
            const entry = this.lookupViewNow(skey);
            if (entry !== wouldWait) {
              stored = entry === undefined ? undefined : this.decodeAndAdmit(key, skey, entry, false);
              return this.settle(this.merge(skey, stored, incoming, incomingBytes));
            }
          }
        }
        if (pending !== undefined || stored !== undefined) return this.settle(this.merge(skey, stored, incoming, incomingBytes));
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const lockId = id ?? storageId(skey);
    // The lock covers deciding and handing over; durability is awaited after it
    // is released, and before resolving, so callers acknowledging a replica
    // write only on this promise still acknowledge durable data.
    return this.withKey(lockId, () => this.loadLocked(key, skey).then((stored) => this.merge(skey, stored, incoming, incomingBytes))).then((merged) => this.settle(merged));
  }

  /**
   * `apply(key, decodeObject(encoded), encoded)` for a caller that only
   * waits for durability (a replica serving a peer's kv.apply): answers
   * `durableNow` when the merge is durable already, `durableLater` having
   * set `listener` to be told once, with `token`, when its write settles
   * (never inside this call), or, when the key is locked or its stored
   * object must be read asynchronously, `apply`'s promise. The incoming
   * object is decoded only to merge: what waits for the fsync is the
   * pending entry with the bytes, so nothing decoded outlives the call
   * (unless the key is cached). Throws what `apply` would reject with,
   * before anything is written.
   */
  applyThen(key: Uint8Array, encoded: Uint8Array, listener: DurabilityListener, token: number): DurableNow | DurableLater | Promise<unknown> {
    validateKey(key);
    const skey = storageKey(key);
    if (this.locks.size === 0 || !this.locks.has(storageId(skey))) {
      const pending = this.pending.get(skey);
      let stored: StoredObject | undefined;
      let known = true;
      if (pending !== undefined) stored = pending.object;
      else {
        stored = this.cache.get(skey);
        if (stored === undefined) {
          // Views: decoded into copies before the engine is called again.
          const entry = this.lookupViewNow(skey);
          if (entry === wouldWait) known = false;
          else if (entry !== undefined) stored = this.decodeAndAdmit(key, skey, entry, false);
        }
      }
      if (known) {
        // Values as views of the peer's bytes (a frame of its own, never reused, which the
        // pending entry keeps anyway): the cache's refresh takes an owned copy.
        const settled = this.mergeNow(skey, stored, this.decodeEntryBytes(key, encoded, true), encoded);
        if (settled === durableNow || settled instanceof Promise) return settled;
        settled.listener = listener;
        settled.token = token;
        return durableLater;
      }
    }
    return this.apply(key, this.decodeEntryBytes(key, encoded), encoded);
  }

  /** decodeEntry for bytes from a peer. */
  private decodeEntryBytes(key: Uint8Array, bytes: Uint8Array, viewValues = false): StoredObject {
    try {
      return decodeObject(bytes, viewValues);
    } catch (error) {
      if (error instanceof CorruptionError) throw new CorruptionError(`Key ${describeKey(key)} from a peer: ${error.message}`, { cause: error });
      throw error;
    }
  }

  /**
   * `merge` for applyThen: a fresh pending entry (no listener yet) when it
   * handed a write over and it is pending, `durableNow` when durable
   * already, else the promise of the pending write a no-op merge waits for.
   */
  private mergeNow(skey: Uint8Array, stored: StoredObject | undefined, incoming: StoredObject, incomingBytes: Uint8Array): PendingWrite | DurableNow | Promise<void> {
    for (const v of incoming.versions) this.hlc.observe(v.timestampMs);
    const normalized = normalizeObject(incoming);
    let result: StoredObject;
    if (stored === undefined) {
      if (normalized.versions.length === 0) {
        this.counters.noopMerges++;
        return this.pending.get(skey)?.durable ?? durableNow;
      }
      result = normalized;
    } else {
      result = mergeObjects(stored, normalized);
      if (sameObject(result, stored)) {
        this.counters.noopMerges++;
        return this.pending.get(skey)?.durable ?? durableNow;
      }
    }
    this.counters.appliedMerges++;
    return this.handOffEntry(skey, result, asEncoded(result, incoming, incomingBytes));
  }

  /** apply's merge of `incoming` into `stored`, handed to the engine; under the key's lock or with nothing able to interleave. */
  private merge(skey: Uint8Array, stored: StoredObject | undefined, incoming: StoredObject, incomingBytes: Uint8Array | undefined): MergeResult {
    for (const v of incoming.versions) this.hlc.observe(v.timestampMs);
    const normalized = normalizeObject(incoming);
    if (stored === undefined) {
      if (normalized.versions.length === 0) {
        this.counters.noopMerges++;
        return { object: normalized, durable: this.settledFor(skey) };
      }
      this.counters.appliedMerges++;
      return { object: normalized, durable: this.handOff(skey, normalized, asEncoded(normalized, incoming, incomingBytes)) };
    }
    const merged = mergeObjects(stored, normalized);
    if (sameObject(merged, stored)) {
      this.counters.noopMerges++;
      return { object: stored, durable: this.settledFor(skey) };
    }
    this.counters.appliedMerges++;
    return { object: merged, durable: this.handOff(skey, merged, asEncoded(merged, incoming, incomingBytes)) };
  }

  /** The merged object once its write is durable: at once when that write settled as it was handed over. */
  private settle(result: MergeResult): Promise<StoredObject> {
    const { object, durable } = result;
    return durable === resolved || durable === this.sharedFulfilled ? Promise.resolve(object) : durable.then(() => object);
  }

  // ------------------------------------------------------------ coordinated writes

  /**
   * Writes a value coordinated by this node. `context` names the versions the
   * write supersedes (the context a read returned); null is a blind write
   * that supersedes nothing and becomes a sibling of whatever exists, as the
   * KvApi documents. A front end that wants "replace what is there" reads
   * first and passes the read's context (RESP's SET does).
   */
  async coordinatePut(key: Uint8Array, value: Uint8Array, context: WriteContext | null, options: StoreWriteOptions = {}): Promise<StoreWriteOutcome> {
    validateKey(key);
    validateValue(key, value);
    // Under the key's lock, so an overwrite cannot miss a version written meanwhile here.
    const seen = options.overwrite === true ? null : (context ?? emptyClock);
    return this.coordinate(key, seen, false, this.valueMaker(value, options.expiresAtMs ?? null));
  }

  /**
   * `coordinatePut` decided and handed to the engine now, without a promise,
   * when nothing has to be waited for: no operation holds the key's lock and
   * the object it builds on is pending, cached or readable synchronously from
   * the engine. Otherwise `wouldWait`, having written nothing. Throws what
   * `coordinatePut` would reject with. The outcome's `durable` still has to be
   * awaited before the write is acknowledged.
   */
  coordinatePutNow(key: Uint8Array, value: Uint8Array, context: WriteContext | null, options: StoreWriteOptions = {}): StoreWriteOutcome | WouldWait {
    validateKey(key);
    validateValue(key, value);
    const skey = storageKey(key);
    // The id string only when a lock could be found under it.
    const id = this.locks.size === 0 ? undefined : storageId(skey);
    // A held lock means an operation on the key is deciding now: this write goes after it.
    if (id !== undefined && this.locks.has(id)) return wouldWait;
    const pending = this.pending.get(skey);
    let known = pending !== undefined ? (pending.object ?? emptyObject) : this.cache.get(skey);
    const seen = options.overwrite === true ? null : (context ?? emptyClock);
    if (known === undefined) {
      // Views: decoded into copies (or only read, supersededBase) before the engine is called again.
      const entry = this.lookupViewNow(skey);
      if (entry === wouldWait) return wouldWait;
      known = entry === undefined ? emptyObject : seen === null ? this.supersededBase(key, entry) : this.decodeEntry(key, entry);
    }
    // Synchronous from here on: nothing can interleave, as under the lock.
    if (seen === null && coversAll(known)) return this.decideOverwrite(key, skey, known, value, options.expiresAtMs ?? null);
    return this.decide(key, skey, known, seen, false, this.valueMaker(value, options.expiresAtMs ?? null));
  }

  /**
   * `coordinatePutNow(key, value, null, { overwrite: true, expiresAtMs })`
   * for a caller that needs only to know when the write is durable (LocalKv's
   * plain SET): `durableNow` when it settled as it was handed over, its
   * `durable` promise otherwise, `wouldWait` having written nothing. When the
   * stored object is one only this node wrote (every object of a single
   * node), its clock entry and newest timestamp are read in place and the new
   * object is encoded straight into one buffer: the bytes, object and clock
   * decideOverwrite builds, without its outcome, temporary clock or decode.
   * `lent`: key and value are valid during the call only (KvApi
   * WriteOptions.lent); what is kept of them is copied (the object a pending
   * write keeps holds its value as a view of the encoded bytes).
   */
  overwriteNow(key: Uint8Array, value: Uint8Array, expiresAtMs: number | null, lent = false): Promise<void> | DurableNow | WouldWait {
    return this.overwrite(key, value, expiresAtMs, lent, undefined, 0) as Promise<void> | DurableNow | WouldWait;
  }

  /**
   * `overwriteNow` telling `listener` when a write left pending settles
   * (`durableLater`) instead of answering its promise (KvApi.putNowThen):
   * the pending write's own reaction tells it, so the caller reacts to nothing.
   */
  overwriteNowThen(key: Uint8Array, value: Uint8Array, expiresAtMs: number | null, lent: boolean, listener: DurabilityListener, token: number): DurableNow | WouldWait | DurableLater {
    return this.overwrite(key, value, expiresAtMs, lent, listener, token) as DurableNow | WouldWait | DurableLater;
  }

  private overwrite(
    key: Uint8Array,
    value: Uint8Array,
    expiresAtMs: number | null,
    lent: boolean,
    listener: DurabilityListener | undefined,
    token: number,
  ): Promise<void> | DurableNow | WouldWait | DurableLater {
    const node = this.nodeIdBytes;
    if (node === undefined) return later(this.outcomeNow(key, value, expiresAtMs, lent), listener, token);
    validateKey(key);
    validateValue(key, value);
    const skey = storageKey(key);
    // A key locked, pending or cached takes coordinatePutNow, which builds on what is in memory.
    if ((this.locks.size !== 0 && this.locks.has(storageId(skey))) || this.pending.has(skey) || (this.cache.size !== 0 && this.cache.get(skey) !== undefined)) {
      return later(this.outcomeNow(key, value, expiresAtMs, lent), listener, token);
    }
    const memo = (this.memo ??= new OverwriteMemo());
    const base = this.base;
    if (!memo.find(skey, base)) {
      // Views: read (or decoded into fresh objects) before the engine is called again.
      const entry = this.lookupViewNow(skey);
      if (entry === wouldWait) return wouldWait;
      if (entry === undefined) {
        base.counter = 0;
        base.lastWallMs = 0;
        base.newestTimestampMs = -Infinity;
      } else if (!peekSoleNodeBase(entry.value, node, base)) {
        const outcome = this.decideOverwrite(key, skey, this.supersededBase(key, entry), lent ? ownedCopy(value) : value, expiresAtMs);
        return later(outcome.settled === true ? durableNow : outcome.durable, listener, token);
      }
    }
    this.hlc.observe(base.newestTimestampMs);
    // One clock read for the timestamp and the clock entry's wall time.
    const wall = Math.floor(this.clock.wallMs());
    const timestampMs = this.hlc.nowAt(wall);
    // As decideOverwrite: dot counters grow with time, so a dot is never reused.
    const counter = Math.max(base.counter + 1, hlcTicks(timestampMs));
    const lastWallMs = Math.max(base.lastWallMs, wall);
    const bytes = encodeSoleValue(node, counter, lastWallMs, timestampMs, value, expiresAtMs);
    if (bytes.length > maxObjectBytes) return later(this.outcomeNow(key, value, expiresAtMs, lent), listener, token);
    // handOff without the object unless it is needed: the key is neither
    // pending nor cached (checked above), so a write settled at once
    // leaves nothing to update but the memo.
    const meta = expiresAtMs === null ? undefined : encodeDeadAfter(expiresAtMs);
    const engine = this.engine;
    if (engine.putCallback !== undefined && !this.lastSettledAtOnce) {
      // No promise, resolving functions or reaction per write: the pending entry and one callback.
      const entry = new PendingBytes(undefined, skey, bytes, listener, token);
      let settled: boolean;
      try {
        settled = engine.putCallback(skey, bytes, meta, (error) => this.callbackSettled(entry, error));
      } catch (error) {
        // What put would reject with; nothing was written.
        return later(Promise.reject(error as Error), listener, token);
      }
      this.writeSeq++;
      // Writes settled at once (sync none) go through put, whose shared resolved promise costs nothing.
      this.lastSettledAtOnce = settled;
      if (!settled) this.pending.set(entry);
      memo.rememberFound(counter, lastWallMs, timestampMs);
      this.counters.coordinatedWrites++;
      if (settled) return durableNow;
      return listener === undefined ? entry.durable : durableLater;
    }
    const durable = engine.put(skey, bytes, meta);
    if (this.settledAtOnce(durable)) {
      this.writeSeq++;
    } else {
      // The bytes hold all of the object (a lent value too: it was copied into them).
      this.track(new PendingBytes(durable, skey, bytes, listener, token));
    }
    memo.rememberFound(counter, lastWallMs, timestampMs);
    this.counters.coordinatedWrites++;
    if (this.lastSettledAtOnce) return durableNow;
    return listener === undefined ? durable : durableLater;
  }

  private outcomeNow(key: Uint8Array, value: Uint8Array, expiresAtMs: number | null, lent: boolean): Promise<void> | DurableNow | WouldWait {
    const outcome = this.coordinatePutNow(lent ? ownedCopy(key) : key, lent ? ownedCopy(value) : value, null, expiresAtMs === null ? overwriteForever : { expiresAtMs, overwrite: true });
    if (outcome === wouldWait) return wouldWait;
    return outcome.settled === true ? durableNow : outcome.durable;
  }

  /**
   * `decide` for one value superseding everything stored (a plain SET): the
   * same object, bytes and outcome as the general path's one-version branch,
   * without the stamp and maker closures, the merge's temporary clock, or a
   * closure for the outcome's context.
   */
  private decideOverwrite(key: Uint8Array, skey: Uint8Array, stored: StoredObject, value: Uint8Array, expiresAtMs: number | null): StoreWriteOutcome {
    for (const v of stored.versions) this.hlc.observe(v.timestampMs);
    const seen = stored.context;
    const timestampMs = this.hlc.now();
    // Dot counters grow with time, so a dot is never reused, even after the object was purged (docs/consistency.md).
    const counter = Math.max(counterOf(seen, this.nodeId) + 1, hlcTicks(timestampMs));
    const version: Version = { dot: { node: this.nodeId, counter }, timestampMs, kind: 'value', value, counter: emptyCounter, expiresAtMs, deletedAtMs: null };
    const written = [version];
    const wall = Math.floor(this.clock.wallMs());
    const merged = advanceClock(seen, this.nodeId, counter, wall);
    const pruned = merged.length <= this.clockPolicy.softEntries ? merged : pruneClock(merged, wall, new Set([this.nodeId]), this.clockPolicy);
    const object: StoredObject = { context: pruned, versions: written };
    const bytes = encodeObject(object);
    if (bytes.length > maxObjectBytes) {
      throw new ConflictError(`Cannot write key ${describeKey(key)}: its 1 versions would take ${bytes.length} bytes, the limit is ${maxObjectBytes}; read it and write with its context to resolve the siblings`);
    }
    const entry = this.handOffEntry(skey, object, bytes);
    this.counters.coordinatedWrites++;
    return new OverwriteOutcome(this, object, written, entry, seen, merged, wall, bytes);
  }

  /** CoordinatedWrite's context for an overwrite (what `decide` would compute for it). */
  overwriteContext(seen: VClock, written: readonly Version[], merged: VClock, wall: number): WriteContext {
    return this.writeContext(seen, seen, written, merged, noVersions, wall);
  }

  /**
   * What an overwrite needs of the object it supersedes: its context, and
   * its newest timestamp observed so the new version is stamped later (what
   * `decide` takes from each version). No versions: every one is superseded.
   */
  private supersededBase(key: Uint8Array, entry: EngineEntry): StoredObject {
    let base: { context: VClock; newestTimestampMs: number };
    try {
      base = decodeSupersededBase(entry.value);
    } catch (error) {
      if (error instanceof CorruptionError) throw new CorruptionError(`Key ${describeKey(key)} on ${this.nodeId}: ${error.message}`, { cause: error });
      throw error;
    }
    this.hlc.observe(base.newestTimestampMs);
    return { context: base.context, versions: [] };
  }

  private valueMaker(value: Uint8Array, expiresAtMs: number | null): (object: StoredObject, stamp: () => Stamp) => Version[] {
    // The value may be a view of a larger buffer (a socket chunk, a pool slab):
    // it is copied only if the object enters the cache (handOff), not on every write.
    return (_obj, stamp) => {
      const { dot, timestampMs } = stamp();
      return [{ dot, timestampMs, kind: 'value', value, counter: emptyCounter, expiresAtMs, deletedAtMs: null }];
    };
  }

  /**
   * Writes a tombstone superseding `context` (null: everything this replica
   * holds). With `keepTombstone: false` — only for a node that is the sole
   * replica, where no copy elsewhere can resurrect the key — a key left with
   * nothing but tombstones is removed from the engine at once.
   */
  async coordinateDelete(key: Uint8Array, context: WriteContext | null, options: { keepTombstone?: boolean } = {}): Promise<StoreWriteOutcome> {
    validateKey(key);
    const dropWhenDead = options.keepTombstone === false;
    return this.coordinate(key, context, dropWhenDead, (_obj, stamp) => [
      { ...stamp(), kind: 'tombstone', value: emptyBytes, counter: [], expiresAtMs: null, deletedAtMs: Math.floor(this.clock.wallMs()) },
    ]);
  }

  /**
   * Adds `delta` to the key's counter, superseding everything this replica
   * holds. Live counter versions are merged first (so concurrent increments
   * all count); without one, the newest plain value must hold an integer and
   * becomes the counter's start; without either the counter starts at 0.
   * Expiry stays as it was unless `options.expiresAtMs` is given.
   */
  async coordinateIncr(key: Uint8Array, delta: bigint, options: StoreWriteOptions = {}): Promise<StoreIncrOutcome> {
    validateKey(key);
    let value = 0n;
    const outcome = await this.coordinate(key, null, false, (obj, stamp) => {
      const now = this.clock.wallMs();
      const live = obj.versions.filter((v) => isLive(v, now) && v.kind !== 'tombstone').sort(newestFirst);
      const { dot, timestampMs } = stamp();
      let state: CounterState = [];
      let expiry: number | null = null;
      const counters = live.filter((v) => v.kind === 'counter');
      const newest = counters[0] ?? live[0];
      if (counters.length > 0) {
        state = mergedCounter(counters);
      } else if (newest !== undefined) {
        const start = parseInteger(newest.value);
        if (start === undefined) throw new InvalidArgumentError(notAnIntegerMessage);
        state = incrementCounter(state, this.nodeId, dot.counter, start);
      }
      if (newest !== undefined) expiry = newest.expiresAtMs;
      state = incrementCounter(state, this.nodeId, dot.counter, delta);
      value = counterValue(state);
      const expiresAtMs = options.expiresAtMs !== undefined ? options.expiresAtMs : expiry;
      return [{ dot, timestampMs, kind: 'counter', value: emptyBytes, counter: state, expiresAtMs, deletedAtMs: null }];
    });
    return Object.assign(outcome, { value });
  }

  /**
   * Changes the expiry of every live version `context` covers (null: all
   * this replica holds) by rewriting each as a new version (a new dot, so
   * replicas can tell old expiry from new), keeping
   * their relative timestamp order so the RESP winner does not change.
   * Counter versions are merged into one. Resolves undefined, writing
   * nothing, when the key has no live value or counter. Throws
   * ReplicaBehindError, writing nothing, when `context` names a version this
   * replica has not seen (docs/replication.md, "Touch").
   */
  async coordinateTouch(key: Uint8Array, expiresAtMs: number | null, context: WriteContext | null): Promise<StoreWriteOutcome | undefined> {
    validateKey(key);
    let touched = true;
    const outcome = await this.coordinate(key, context, false, (obj, stamp) => {
      if (context !== null && !hasSeen(obj.context, context)) {
        throw new ReplicaBehindError(
          `Cannot change the expiry of ${describeKey(key)}: its context names versions that replica ${this.nodeId} has not seen; read the key at quorum and try again`,
        );
      }
      const now = this.clock.wallMs();
      // Only versions the caller saw are rewritten; the others keep their expiry and stay as they are.
      const seen = context ?? obj.context;
      const live = obj.versions.filter((v) => isLive(v, now) && contextCovers(seen, v.dot));
      if (!live.some((v) => v.kind !== 'tombstone')) {
        touched = false;
        return undefined;
      }
      const counters = live.filter((v) => v.kind === 'counter');
      const others = live.filter((v) => v.kind !== 'counter');
      const newestCounter = [...counters].sort(newestFirst)[0];
      const olderFirst = [...others, ...(newestCounter === undefined ? [] : [newestCounter])].sort((a, b) => newestFirst(b, a));
      return olderFirst.map((v): Version => {
        const s = stamp();
        if (v.kind === 'counter') return { ...v, ...s, counter: mergedCounter(counters), expiresAtMs };
        if (v.kind === 'tombstone') return { ...v, ...s };
        return { ...v, ...s, expiresAtMs };
      });
    });
    return touched ? outcome : undefined;
  }

  private coordinate(
    key: Uint8Array,
    context: WriteContext | null,
    dropWhenDead: boolean,
    make: (object: StoredObject, stamp: () => Stamp) => Version[] | undefined,
  ): Promise<StoreWriteOutcome> {
    const partition = slotOf(key);
    const skey = storageKey(key, partition);
    const id = storageId(skey);
    return this.withKey(id, () => {
      // Decided without a promise when the object is in memory (pending or cached): the common case.
      const pending = this.pending.get(skey);
      const known = pending !== undefined ? (pending.object ?? emptyObject) : this.cache.get(skey);
      if (known !== undefined) return this.decide(key, skey, known, context, dropWhenDead, make);
      return this.loadAndCache(key, skey).then((stored) => this.decide(key, skey, stored ?? emptyObject, context, dropWhenDead, make));
    });
  }

  /** The write itself, under the key's lock, over the object it builds on. */
  private decide(
    key: Uint8Array,
    skey: Uint8Array,
    stored: StoredObject,
    context: WriteContext | null,
    dropWhenDead: boolean,
    make: (object: StoredObject, stamp: () => Stamp) => Version[] | undefined,
  ): StoreWriteOutcome {
    for (const v of stored.versions) this.hlc.observe(v.timestampMs);
    const seen: WriteContext = context ?? stored.context;
    const seenClock = plainClock(seen);
    let next = Math.max(counterOf(stored.context, this.nodeId), counterOf(seenClock, this.nodeId));
    const dots = seen.dots;
    if (dots !== undefined) for (const d of dots) if (d.node === this.nodeId) next = Math.max(next, d.counter);
    const stamp = (): Stamp => {
      const timestampMs = this.hlc.now();
      // Dot counters grow with time, so a dot is never reused, even after the object was purged (docs/consistency.md).
      next = Math.max(next + 1, hlcTicks(timestampMs));
      return { dot: { node: this.nodeId, counter: next }, timestampMs };
    };
    const written = make(stored, stamp);
    if (written === undefined) return { object: stored, written: [], context: seenClock, durable: this.settledFor(skey) };
    const wall = Math.floor(this.clock.wallMs());
    let survivors: Version[];
    let merged: VClock;
    let object: StoredObject;
    const only = written.length === 1 ? written[0] : undefined;
    if (context === null && only !== undefined && coversAll(stored)) {
      // One version superseding everything stored (SET, INCR, DEL without a context):
      // what the general path below computes, without its sorting and copying.
      survivors = [];
      merged = mergeClocks(stored.context, [{ node: only.dot.node, counter: only.dot.counter, lastWallMs: wall }]);
      const pruned = merged.length <= this.clockPolicy.softEntries ? merged : pruneClock(merged, wall, new Set([only.dot.node]), this.clockPolicy);
      object = { context: pruned, versions: written };
    } else {
      survivors = survivorsOf(stored, seen);
      this.checkSiblingLimit(key, survivors, written);
      merged = mergeClocks(stored.context, seenClock);
      for (const v of written) merged = mergeClocks(merged, [{ node: v.dot.node, counter: v.dot.counter, lastWallMs: wall }]);
      const versions = survivors.length === 0 ? written : [...survivors, ...written];
      // pruneClock reads `keep` only past softEntries: no Set for the usual small clock.
      const pruned = merged.length <= this.clockPolicy.softEntries ? merged : pruneClock(merged, wall, new Set<NodeId>(versions.map((v) => v.dot.node)), this.clockPolicy);
      object = makeObject(pruned, versions);
    }
    const bytes = encodeObject(object);
    if (bytes.length > maxObjectBytes) {
      throw new ConflictError(
        `Cannot write key ${describeKey(key)}: its ${object.versions.length} versions would take ${bytes.length} bytes, the limit is ${maxObjectBytes}; read it and write with its context to resolve the siblings`,
      );
    }
    const entry = dropWhenDead && object.versions.every((v) => v.kind === 'tombstone') ? this.handOffEntry(skey, undefined) : this.handOffEntry(skey, object, bytes);
    this.counters.coordinatedWrites++;
    return new CoordinatedWrite(object, written, entry, () => this.writeContext(seen, seenClock, written, merged, survivors, wall), bytes);
  }

  /**
   * The context a write hands back: what it superseded plus what it wrote.
   * A dot of its own is folded into the clock only when that cannot also
   * cover a sibling the writer did not see; otherwise it stays an exact dot.
   * (Folding (n, 7) into {n: 3} would also cover a surviving (n, 5).)
   */
  private writeContext(seen: WriteContext, seenClock: VClock, written: readonly Version[], known: VClock, survivors: readonly Version[], wall: number): WriteContext {
    const only = written.length === 1 && seen.dots === undefined ? written[0] : undefined;
    const extra: Dot[] = only !== undefined ? [only.dot] : [...(seen.dots ?? []), ...written.map((v) => v.dot)].sort((a, b) => (a.node !== b.node ? (a.node < b.node ? -1 : 1) : a.counter - b.counter));
    let clock = seenClock;
    const exact: Dot[] = [];
    for (const d of extra) {
      const from = counterOf(clock, d.node);
      if (d.counter <= from) continue;
      const gap = survivors.some((v) => v.dot.node === d.node && v.dot.counter > from && v.dot.counter < d.counter);
      if (coversDot(known, d) && !gap) clock = mergeClocks(clock, [{ node: d.node, counter: d.counter, lastWallMs: wall }]);
      else exact.push(d);
    }
    const pruned = clock.length <= this.clockPolicy.softEntries ? clock : pruneClock(clock, wall, new Set(written.map((v) => v.dot.node)), this.clockPolicy);
    return withDots(pruned, exact);
  }

  private checkSiblingLimit(key: Uint8Array, survivors: readonly Version[], written: readonly Version[]): void {
    const now = this.clock.wallMs();
    let live = written.length;
    for (const v of survivors) if (isLive(v, now)) live++;
    if (live <= this.maxSiblings) return;
    this.counters.siblingLimitRejections++;
    throw new ConflictError(
      `Cannot write key ${describeKey(key)}: it would have ${live} concurrent versions (siblings), the limit is ${this.maxSiblings}; read the key and write with the context it returns to resolve them`,
    );
  }

  // ------------------------------------------------------------ scans and maintenance

  /** A page of objects in storage order (partition, then key). */
  async scanLocal(options: ScanLocalOptions): Promise<ScanPage> {
    assert(options.limit >= 1, 'scanLocal needs a positive limit');
    const from = options.fromPartition ?? 0;
    const to = options.toPartition ?? slotCount;
    const range = partitionRange(from, to);
    const items: ScanItem[] = [];
    let read = 0;
    let last: Uint8Array | undefined;
    const now = this.clock.wallMs();
    const bounds = options.after === undefined ? { gte: range.gte } : { gt: options.after };
    for await (const entry of this.engine.iterate({ ...bounds, lt: range.lt, limit: options.limit })) {
      read++;
      last = entry.key;
      if (!isDataKey(entry.key)) continue;
      const key = Uint8Array.prototype.slice.call(userKeyOf(entry.key));
      const object = this.decodeEntry(key, entry);
      const partition = partitionOfStorageKey(entry.key);
      if (options.includeDead) {
        items.push({ key, partition, object });
        continue;
      }
      const live = object.versions.filter((v) => isLive(v, now));
      if (!live.some((v) => v.kind !== 'tombstone')) continue;
      items.push({ key, partition, object: live.length === object.versions.length ? object : { context: object.context, versions: live } });
    }
    return { items, next: read < options.limit || last === undefined ? null : last };
  }

  /**
   * Drops tombstones and expired versions older than the grace period, and
   * keys left with nothing. Run it periodically; the grace period must be
   * longer than it takes anti-entropy and hinted handoff to spread a delete.
   */
  async purge(): Promise<PurgeResult> {
    const result: PurgeResult = { versionsDropped: 0, keysRemoved: 0, keysScanned: 0 };
    const cutoff = this.clock.wallMs() - this.tombstoneGraceMs;
    let after: Uint8Array | undefined;
    for (;;) {
      const page = await this.scanLocal({ limit: purgeBatchEntries, includeDead: true, ...(after === undefined ? {} : { after }) });
      for (const item of page.items) {
        result.keysScanned++;
        if (!item.object.versions.some((v) => purgeable(v, cutoff))) continue;
        const skey = storageKey(item.key, item.partition);
        const id = storageId(skey);
        const durable = await this.withKey(id, async () => {
          const current = await this.loadLocked(item.key, skey);
          if (current === undefined) return undefined;
          const kept = current.versions.filter((v) => !purgeable(v, cutoff));
          result.versionsDropped += current.versions.length - kept.length;
          if (kept.length === 0) {
            result.keysRemoved++;
            return this.handOff(skey, undefined);
          }
          return this.handOff(skey, { context: current.context, versions: kept });
        });
        await durable;
      }
      if (page.next === null) return result;
      after = page.next;
    }
  }

  /**
   * Runs `purge()` every `intervalMs` on the injected clock, the next run
   * starting only after the previous one finished, until `stop()`.
   */
  startPurging(intervalMs: number, onDone: (result: PurgeResult | undefined, error?: unknown) => void = () => undefined): { stop(): void } {
    assert(intervalMs > 0, 'the purge interval must be positive');
    let timer: Timer | undefined;
    let stopped = false;
    const schedule = (): void => {
      if (stopped) return;
      timer = this.clock.setTimer(intervalMs, () => {
        this.purge().then(
          (result) => onDone(result),
          (error: unknown) => onDone(undefined, error),
        ).finally(schedule);
      });
    };
    schedule();
    return {
      stop: () => {
        stopped = true;
        timer?.cancel();
      },
    };
  }

  /** Removes every key on this replica (FLUSHALL on a single node). */
  async clear(): Promise<number> {
    // Writes already handed over land first, so none resurrects a key after the deletes.
    await Promise.allSettled(this.pending.values().map((p) => p.durable));
    let removed = 0;
    for (;;) {
      this.writeSeq++;
      this.cache.clear();
      this.memo?.clear();
      const batch: Uint8Array[] = [];
      for await (const entry of this.engine.iterate({ ...dataRange(), limit: purgeBatchEntries })) batch.push(entry.key);
      if (batch.length === 0) return removed;
      await this.engine.write(batch.map((key) => ({ type: 'delete' as const, key })));
      removed += batch.length;
    }
  }

  /** The object a locked read-modify-write builds on: a pending hand-over first, else the engine's. */
  private async loadLocked(key: Uint8Array, skey: Uint8Array): Promise<StoredObject | undefined> {
    const pending = this.pending.get(skey);
    if (pending !== undefined) return pending.object;
    return this.cache.get(skey) ?? this.loadAndCache(key, skey);
  }

  /**
   * Hands a new object (undefined: remove the key) to the engine; called under
   * the key's lock. A key's engine writes are issued in the order they were
   * decided: one issued while an earlier write of the key is still pending
   * waits for it, and fails with it (it was built on that write's versions,
   * which the engine never stored). The pending entry leaves once the write
   * settles, so a failed write is not seen by anyone afterwards.
   */
  private handOff(skey: Uint8Array, object: StoredObject | undefined, bytes?: Uint8Array): Promise<void> {
    const entry = this.handOffEntry(skey, object, bytes);
    return entry === durableNow ? resolved : entry.durable;
  }

  /**
   * `handOff` answering its pending entry (to which a waiter may attach a
   * listener before this call's caller returns) or `durableNow` when the
   * write settled as it was handed over (then `lastSettledAtOnce` is true).
   * With no earlier write of the key pending and an engine that offers
   * `putCallback`, the entry keeps the encoded bytes and the engine's
   * callback settles it: no promise or reaction per write, and nothing of
   * the decided object alive across the group commit unless the key is cached.
   */
  private handOffEntry(skey: Uint8Array, object: StoredObject | undefined, bytes?: Uint8Array): PendingWrite | DurableNow {
    // Any write but overwriteNow's own (which does not come here) makes its memory of the key stale.
    this.memo?.forget(skey);
    const before = this.pending.get(skey);
    const engine = this.engine;
    if (before === undefined && object !== undefined && engine.putCallback !== undefined && !this.lastSettledAtOnce) {
      const data = bytes ?? encodeObject(object);
      const entry = new PendingBytes(undefined, skey, data, undefined, 0, this.cache.holds(skey) ? object : undefined);
      // Throws what put would reject with; nothing was written then.
      const settled = engine.putCallback(skey, data, encodeMeta(object), (error) => this.callbackSettled(entry, error));
      this.lastSettledAtOnce = settled;
      this.writeSeq++;
      if (settled) {
        this.cache.refresh(skey, object);
        return durableNow;
      }
      this.pending.set(entry);
      return entry;
    }
    const write = (): Promise<void> => (object === undefined ? engine.delete(skey) : engine.put(skey, bytes ?? encodeObject(object), encodeMeta(object)));
    const durable =
      before === undefined
        ? write()
        : before.durable.then(write, (cause: unknown) => {
            throw new IoError(`Cannot write key ${describeKey(userKeyOf(skey))}: an earlier write of it on ${this.nodeId} failed and this one built on it; retry the write`, { cause });
          });
    if (this.settledAtOnce(durable)) {
      // Durable already (a promise seen resolved stays resolved): what track's callback would do, now.
      this.writeSeq++;
      if (object === undefined) this.cache.delete(skey);
      else this.cache.refresh(skey, object);
      return durableNow;
    }
    const entry: PendingWrite = { object, durable, skey, next: undefined, listener: undefined, token: 0, done: undefined };
    this.track(entry);
    return entry;
  }

  /**
   * Notes a promise the engine handed back for a write; true (also left in
   * `lastSettledAtOnce`) when it is the shared one already seen resolved, so
   * the write is settled as it is handed over.
   */
  private settledAtOnce(durable: Promise<void>): boolean {
    if (durable === this.lastHandedBack) this.sharedPromise = durable;
    this.lastHandedBack = durable;
    this.lastSettledAtOnce = durable === this.sharedFulfilled;
    return this.lastSettledAtOnce;
  }

  /** A write handed over and not settled: pending until its engine write settles, then the cache and memo follow what happened. */
  private track(entry: PendingWrite): void {
    this.pending.set(entry);
    this.writeSeq++;
    const durable = entry.durable;
    durable.then(
      () => {
        if (durable === this.sharedPromise) this.sharedFulfilled = durable;
        this.pendingDurable(entry);
      },
      (error: unknown) => this.pendingFailed(entry, error),
    );
  }

  /** A pending write handed over with Engine.putCallback settled: the engine's callback, in place of track's reactions. */
  private callbackSettled(entry: PendingBytes, error: Error | undefined): void {
    entry.settledWith(error);
    if (error === undefined) this.pendingDurable(entry);
    else this.pendingFailed(entry, error);
  }

  private pendingDurable(entry: PendingWrite): void {
    entry.done = settledOk;
    this.writeSeq++;
    const skey = entry.skey;
    // A cached key is kept current (a key not cached stays out); asked first, so an overwrite's object is built only then.
    if (this.cache.holds(skey)) {
      const object = entry.object;
      if (object === undefined) this.cache.delete(skey);
      else this.cache.refresh(skey, object);
    }
    this.pending.deleteIf(entry);
    // Last: the store is consistent when the listener acts on it.
    entry.listener?.writeSettled(entry.token, false, undefined);
  }

  private pendingFailed(entry: PendingWrite, error: unknown): void {
    // What the engine holds for the key is now uncertain: the next read asks it.
    entry.done = { failed: true, error };
    this.writeSeq++;
    this.cache.delete(entry.skey);
    this.memo?.forget(entry.skey);
    this.pending.deleteIf(entry);
    entry.listener?.writeSettled(entry.token, true, error);
  }

  /** For a write that changed nothing: durable once whatever it read is. */
  private settledFor(skey: Uint8Array): Promise<void> {
    return this.pending.get(skey)?.durable ?? resolved;
  }

  /**
   * Runs `fn` with the key's lock held. When no one holds the lock and `fn`
   * finishes without waiting, it runs at once and no lock is recorded (nothing
   * could have interleaved with it).
   */
  private withKey<T>(id: string, fn: () => T | Promise<T>): Promise<T> {
    const previous = this.locks.get(id);
    let run: Promise<T>;
    if (previous === undefined) {
      let result: T | Promise<T>;
      try {
        result = fn();
      } catch (error) {
        return Promise.reject(error as Error);
      }
      if (!(result instanceof Promise)) return Promise.resolve(result);
      run = result;
    } else {
      run = previous.then(fn);
    }
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(id, tail);
    const release = (): void => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    };
    tail.then(release, release);
    return run;
  }
}

const resolved: Promise<void> = Promise.resolve();

/** A write's durability for overwriteNowThen's caller: its listener told from a reaction (paths other than the pending overwrite's own). */
function later(durable: Promise<void> | DurableNow | WouldWait, listener: DurabilityListener | undefined, token: number): Promise<void> | DurableNow | WouldWait | DurableLater {
  if (listener === undefined || durable === durableNow || durable === wouldWait) return durable;
  durable.then(
    () => listener.writeSettled(token, false, undefined),
    (error: unknown) => listener.writeSettled(token, true, error),
  );
  return durableLater;
}

function purgeable(v: Version, cutoffMs: number): boolean {
  if (v.kind === 'tombstone') return (v.deletedAtMs ?? v.timestampMs) <= cutoffMs;
  return v.expiresAtMs !== null && v.expiresAtMs <= cutoffMs;
}

const emptyBytes = new Uint8Array(0);
const emptyCounter: CounterState = Object.freeze([]) as unknown as CounterState;

/** True for errors a coordinated write raises because of the sibling limit. */
export function isSiblingLimitError(error: unknown): boolean {
  return isRingkvError(error) && error.code === 'RINGKV_CONFLICT';
}

/** Whether a replica whose object has clock `clock` has seen every version `context` covers (its clock and its exact dots). */
function hasSeen(clock: VClock, context: WriteContext): boolean {
  if (!descends(clock, plainClock(context))) return false;
  for (const dot of context.dots ?? []) if (!coversDot(clock, dot)) return false;
  return true;
}
