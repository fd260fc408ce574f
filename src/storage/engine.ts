/**
 * The storage engine contract. Two engines implement it and run one
 * compliance suite: MemoryEngine (reference model, tests) and the LSM engine.
 * Keys and values are bytes ordered by byte comparison. Each entry may carry
 * small metadata bytes (the replication layer stores version and expiry there).
 */

export interface EngineEntry {
  key: Uint8Array;
  value: Uint8Array;
  /** Small opaque bytes stored beside the value; undefined when none was written. */
  meta: Uint8Array | undefined;
}

export type BatchOp =
  | { type: 'put'; key: Uint8Array; value: Uint8Array; meta?: Uint8Array }
  | { type: 'delete'; key: Uint8Array };

/** Bounds of an ordered scan; any subset may be given. */
export interface KeyRange {
  gte?: Uint8Array;
  gt?: Uint8Array;
  lte?: Uint8Array;
  lt?: Uint8Array;
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
}

export interface EngineStats {
  /** Approximate count of live keys (exact for the memory engine). */
  approximateKeys: number;
  [metric: string]: number | Record<string, number>;
}

export interface Engine {
  get(key: Uint8Array): Promise<EngineEntry | undefined>;
  /**
   * Optional: what `get` would resolve with, answered now without a promise
   * (throws what `get` would reject with). For callers answering many
   * requests per event-loop turn; an engine that can only read
   * asynchronously leaves it out and such callers use `get`.
   */
  getNow?(key: Uint8Array): EngineEntry | undefined;
  /**
   * Optional: getNow without copies, for transient readers that copy what
   * they need at once (a RESP GET writing the value into its reply). The
   * entry's `key` is the `key` given, and `value` and `meta` may be views
   * into the engine's memory: they are valid only until the next call into
   * the engine (any method), after which they may hold other bytes. Engines
   * do not retain `key` in getNow or getNowView.
   */
  getNowView?(key: Uint8Array): EngineEntry | undefined;
  /**
   * Resolves once the write is as durable as the sync mode promises. A write
   * that needs no waiting may be answered with one shared, already-resolved
   * promise (the LSM engine under sync `none`); ReplicaStore recognises it to
   * skip per-write bookkeeping, so returning it costs callers nothing.
   */
  put(key: Uint8Array, value: Uint8Array, meta?: Uint8Array): Promise<void>;
  /**
   * Optional: put without a promise, for callers that write per request and
   * count allocations. Returns true when the write is already as durable as
   * the sync mode promises (`done` is then never called); otherwise returns
   * false and calls `done` exactly once, later (never before returning),
   * with undefined or the error `put` would have rejected with. When `done`
   * reports success the write is already visible to reads, so the callback
   * may read it back or put again (the store's durable SET path relies on
   * both). Invalid arguments, a closed engine and a failed buffered WAL
   * append throw.
   */
  putCallback?(key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined, done: (error: Error | undefined) => void): boolean;
  delete(key: Uint8Array): Promise<void>;
  /** Applies every operation or none, also across a crash. */
  write(batch: readonly BatchOp[]): Promise<void>;
  /** Entries in key order (or reverse), a consistent snapshot as of the call. */
  iterate(range?: KeyRange): AsyncIterable<EngineEntry>;
  /** Compacts everything it can now (tests, operators); background compaction runs anyway. */
  compact(): Promise<void>;
  stats(): EngineStats;
  close(): Promise<void>;
}
