/**
 * The key-value API that a node offers its front ends (RESP, HTTP, CLI).
 * Front ends depend on this contract only; the single-node implementation
 * (N = 1 over the local engine) and the replicated coordinator both provide
 * it, so the same front ends serve one node or a cluster.
 */
import { ConflictError, type NodeId } from '../core/index.ts';

/** How many replicas must answer: a named level or an exact number. */
export type Consistency = 'one' | 'quorum' | 'all' | 'local_quorum' | number;

/**
 * Opaque causal context (an encoded vector clock). A client reads it with the
 * siblings and hands it back with the write that supersedes them.
 */
export type CausalContext = Uint8Array;

export interface ReadOptions {
  r?: Consistency;
  /** Strict quorum: only the key's home replicas count (no fallback nodes). */
  strict?: boolean;
  timeoutMs?: number;
  /**
   * The wall time (epoch ms) to judge expiry by, for a caller that read the
   * clock moments ago (a front end reading it once per batch of pipelined
   * commands, as Redis caches its time per event-loop turn). Honoured by a
   * store that answers at once (`winnerNow`); omitted: the store reads its clock.
   */
  nowWallMs?: number;
}

export interface WriteOptions {
  w?: Consistency;
  strict?: boolean;
  timeoutMs?: number;
  /** The context of the versions this write supersedes; omitted: a blind write (may create siblings). */
  context?: CausalContext | null;
  /** Absolute expiry in epoch milliseconds; null: no expiry. */
  expiresAtMs?: number | null;
  /**
   * Supersede every version the coordinating replica holds, without a context
   * (put only): one round trip for protocols that cannot carry contexts (RESP
   * SET). Versions that replica has not seen yet still become siblings.
   */
  overwrite?: boolean;
  /**
   * For `putNow` only: the key and value are lent for the duration of the
   * call (views of a buffer the caller reuses at once, e.g. a socket read),
   * so an implementation copies whatever of them it keeps. A front end
   * answering from its input buffer saves a copy of each per write.
   */
  lent?: boolean;
}

interface SiblingBase {
  /** Absolute expiry in epoch ms, or null. Expired siblings are never returned. */
  expiresAtMs: number | null;
  /** Hybrid-logical-clock time of the write, for the deterministic RESP winner. */
  timestampMs: number;
  /** The node that coordinated the write (tie-breaker after timestampMs). */
  writer: NodeId;
}

export interface ValueSibling extends SiblingBase {
  kind: 'value';
  value: Uint8Array;
}

/** A CRDT counter: concurrent increments on different nodes all count. */
export interface CounterSibling extends SiblingBase {
  kind: 'counter';
  count: bigint;
}

/** A delete, kept (with its clock) so a stale replica cannot resurrect the key. */
export interface TombstoneSibling extends SiblingBase {
  kind: 'tombstone';
}

export type Sibling = ValueSibling | CounterSibling | TombstoneSibling;

export interface GetResult {
  /** Concurrent versions; empty when the key does not exist. */
  siblings: Sibling[];
  /** Context covering every sibling returned; pass it to put/delete to resolve them. */
  context: CausalContext;
}

export interface PutResult {
  /** Context of the version just written. */
  context: CausalContext;
}

export interface ScanResult {
  /** "0" when the scan is complete. */
  cursor: string;
  keys: Uint8Array[];
}

/**
 * A touch whose context names versions this replica has not seen: rewriting
 * what it holds instead would supersede, with old values, the newer versions
 * the client read elsewhere. The coordinator fetches them and tries again.
 */
export class ReplicaBehindError extends ConflictError {}

/** What a synchronous attempt (`winnerNow`, `putNow`) answers when it would have to wait; the caller then uses the asynchronous method. */
export const wouldWait: unique symbol = Symbol('ringkv.wouldWait');
export type WouldWait = typeof wouldWait;

/** What `putNow` answers when the write is already as durable as `put` would have waited for (nothing to await). */
export const durableNow: unique symbol = Symbol('ringkv.durableNow');
export type DurableNow = typeof durableNow;

/** What `putNowThen` answers when the write was handed over and its listener will be told when it settles. */
export const durableLater: unique symbol = Symbol('ringkv.durableLater');
export type DurableLater = typeof durableLater;

/**
 * Told once when a write `putNowThen` answered `durableLater` for settles:
 * `failed` false once it is as durable as `put` waits for, true with the
 * error `put` would have rejected with. Called from a promise reaction,
 * never inside the `putNowThen` call.
 */
export interface DurabilityListener {
  writeSettled(token: number, failed: boolean, error: unknown): void;
}

/** The sibling a protocol without siblings shows (resolveWinner). */
export type Winner = ValueSibling | CounterSibling;

export interface KvApi {
  get(key: Uint8Array, options?: ReadOptions): Promise<GetResult>;
  /**
   * Optional: `resolveWinner(await get(key, options))` computed now, for a
   * front end answering many commands per socket read without a promise
   * each; `wouldWait` (having done nothing) when the answer needs to wait (a
   * read from another node, a store without synchronous reads, a lock).
   * Throws what `get` would reject with. The winner's value may be a view
   * of a buffer the store lends: use it at once, copy it to keep it.
   */
  winnerNow?(key: Uint8Array, options?: ReadOptions): Winner | undefined | WouldWait;
  /**
   * Optional: starts `put(key, value, options)` now when it can be decided
   * without waiting, returning a promise that resolves when `put` would have
   * (after durability) and rejects as it would, or `durableNow` when the
   * write is already that durable; `wouldWait` (having written nothing)
   * otherwise. Throws what `put` would reject with before writing.
   */
  putNow?(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void> | DurableNow | WouldWait;
  /**
   * Optional: `putNow` for a caller that would only react to the promise
   * (a front end holding a reply until the write is durable): instead of a
   * promise it answers `durableLater` and tells `listener` once, with
   * `token`, when the write settles. The store already reacts to its
   * engine's promise, so this costs no promise, reaction or microtask of
   * the caller's per write. Same `durableNow`, `wouldWait` and throws as `putNow`.
   */
  putNowThen?(key: Uint8Array, value: Uint8Array, options: WriteOptions | undefined, listener: DurabilityListener, token: number): DurableNow | WouldWait | DurableLater;
  put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<PutResult>;
  /** Writes a tombstone superseding `options.context` (or everything seen, when omitted). */
  delete(key: Uint8Array, options?: WriteOptions): Promise<void>;
  /**
   * Adds `delta` to a CRDT counter, creating it at 0 when absent. A plain value
   * holding a base-10 integer is converted to a counter; anything else is an
   * InvalidArgumentError. Keeps the existing expiry unless `expiresAtMs` is given.
   * Resolves with the counter's value as this replica sees it after the increment.
   */
  incrBy(key: Uint8Array, delta: bigint, options?: WriteOptions): Promise<bigint>;
  /** Changes only the expiry of the current version(s); false when the key does not exist. */
  touch(key: Uint8Array, expiresAtMs: number | null, options?: WriteOptions): Promise<boolean>;
  /** Iterates live keys across the keyspace in storage order; `cursor` "0" starts. */
  scan(cursor: string, count: number): Promise<ScanResult>;
  /** Approximate number of live keys held (for DBSIZE and INFO keyspace). */
  approximateCount(): Promise<number>;
  /** Removes every key (FLUSHALL). */
  flushAll(): Promise<void>;
}

/** True when a read found the key: at least one sibling that is not a tombstone. */
export function isFound(result: GetResult): boolean {
  return result.siblings.some((s) => s.kind !== 'tombstone');
}

/**
 * The deterministic winner among siblings, for protocols that cannot express
 * siblings (RESP): the latest hybrid-logical timestamp, ties broken by writer
 * id. Undefined when there is none or the winner is a tombstone.
 */
export function resolveWinner(result: GetResult): ValueSibling | CounterSibling | undefined {
  let best: Sibling | undefined;
  for (const s of result.siblings) {
    if (best === undefined || s.timestampMs > best.timestampMs || (s.timestampMs === best.timestampMs && s.writer > best.writer)) best = s;
  }
  return best === undefined || best.kind === 'tombstone' ? undefined : best;
}

// ---------------------------------------------------------------- cluster views

export type NodeStatus = 'joining' | 'normal' | 'leaving' | 'left';
export type Liveness = 'up' | 'suspect' | 'down';

export interface NodeInfo {
  id: NodeId;
  /** Inter-node address host:port. */
  address: string;
  respAddress: string | null;
  httpAddress: string | null;
  dc: string;
  rack: string;
  status: NodeStatus;
  liveness: Liveness;
  /** Partitions (virtual nodes) this node is a primary replica for. */
  partitions: number;
}

export interface RingInfo {
  strategy: 'balanced' | 'random';
  /** Version of the ring state; equal versions mean identical rings. */
  version: string;
  partitionCount: number;
  replicationFactor: number;
  /** Contiguous partition ranges and their replicas, in ring order. */
  ranges: Array<{ start: number; end: number; replicas: NodeId[] }>;
}

export interface ReplicaInfo {
  partition: number;
  /** Home replicas, preferred first. */
  replicas: NodeId[];
  /** Healthy nodes a sloppy quorum would use now, preferred first. */
  sloppy: NodeId[];
}

/** What the front ends show about the cluster. */
export interface ClusterView {
  localId: NodeId;
  nodes(): NodeInfo[];
  ring(): RingInfo;
  replicasOf(key: Uint8Array): ReplicaInfo;
}
