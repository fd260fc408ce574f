/**
 * The injected environment. Protocol logic (gossip, coordinator, handoff,
 * anti-entropy, rate limiting) and the storage engine reach time, randomness,
 * disk and network only through these interfaces. Production wires the real
 * implementations (clock.ts RealClock, random.ts seeded from crypto, fs-real.ts,
 * src/transport's TCP transport); the simulator in sim/ wires virtual ones so
 * that a whole cluster runs in one process and a seed replays a run exactly.
 */

// ---------------------------------------------------------------- time

export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  keepAlive?: boolean;
}

export interface Clock {
  /** Milliseconds on a monotonic clock; only differences are meaningful. */
  nowMs(): number;
  /** Milliseconds since the Unix epoch (for TTLs and hybrid logical clocks). */
  wallMs(): number;
  /**
   * Runs `fn` once after `delayMs`. Timers never fire re-entrantly. A real
   * clock's timer does not keep the process alive unless `keepAlive` is set
   * (for a timer something awaits, e.g. a write waiting for its group commit).
   */
  setTimer(delayMs: number, fn: () => void, options?: TimerOptions): Timer;
  /** Resolves after `delayMs`. */
  sleep(delayMs: number): Promise<void>;
}

// ---------------------------------------------------------------- randomness

export interface Random {
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** Uniform unsigned 32-bit integer. */
  u32(): number;
  bytes(length: number): Uint8Array;
  /** An independent stream derived from this one and a label (stable across runs). */
  fork(label: string): Random;
}

// ---------------------------------------------------------------- disk

/**
 * A file opened for appending. Appends are buffered by the OS until `sync`;
 * on a crash, unsynced bytes may be lost or torn (the in-memory file system
 * models exactly that).
 */
export interface AppendFile {
  readonly path: string;
  /** Bytes appended so far (including unsynced ones). */
  readonly size: number;
  append(data: Uint8Array): Promise<void>;
  appendSync(data: Uint8Array): void;
  /** fdatasync: everything appended before the call is durable when it resolves. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A file opened for positional reads. Reads are synchronous (page-cache speed). */
export interface ReadFile {
  readonly path: string;
  readonly size: number;
  /** Reads exactly `length` bytes at `position`, or fewer at end of file. */
  readSync(position: number, length: number): Uint8Array;
  /**
   * Reads up to `length` bytes at `position` into `target` from byte 0 and
   * returns how many were read (fewer only at end of file). Lets a hot read
   * path reuse one buffer instead of allocating one per read.
   */
  readSyncInto(position: number, length: number, target: Uint8Array): number;
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface OpenAppendOptions {
  /** Start empty. */
  truncate?: boolean;
  /**
   * With `truncate`: the file is first written with this many zero bytes and
   * made durable, data and size, before the call resolves; appends then
   * overwrite it from byte 0 (`size` counts appended bytes only). An
   * fdatasync after appends inside that extent flushes data only, with no
   * file-size change for the file system to journal: on ext4 about half the
   * latency and system CPU of one that grows the file (bench/RESULTS.md).
   * A hint: a file system may ignore it (the in-memory one does), so readers
   * of such a file must take a tail of zero bytes as its end.
   */
  preallocateBytes?: number;
  /**
   * sync() runs fdatasync on the calling thread and returns a settled
   * promise: no hand-off to a thread-pool thread and back, while the event
   * loop waits for the disk (Redis's appendfsync always). A hint, like
   * preallocateBytes.
   */
  syncInline?: boolean;
}

export interface FileSystem {
  mkdirp(dir: string): Promise<void>;
  /** Names (not paths) of the entries in `dir`, sorted. */
  list(dir: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /** Size in bytes, or undefined when the file does not exist. */
  size(path: string): Promise<number | undefined>;
  /** Creates the file if missing (truncate: start empty). */
  openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile>;
  openRead(path: string): Promise<ReadFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** Atomic replace; durable once the parent directory is synced. */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Truncates a file to `length` bytes (used to cut a torn WAL tail). */
  truncate(path: string, length: number): Promise<void>;
  /** Makes creations, renames and removals in `dir` durable. */
  syncDir(dir: string): Promise<void>;
}

// ---------------------------------------------------------------- logging

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

// ---------------------------------------------------------------- network

/** Stable identity of a node, chosen at first start and kept in its data dir. */
export type NodeId = string;

/**
 * A message between nodes: a plain object that msgpack can carry (strings,
 * numbers, booleans, null, arrays, plain objects, Uint8Array, bigint).
 * `type` names the protocol message ("gossip.syn", "kv.put", …).
 */
export interface WireMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** Told of a request's outcome by Transport.requestThen. */
export interface ReplyListener {
  replyReceived(token: number, reply: WireMessage): void;
  requestFailed(token: number, error: Error): void;
}

export interface MessageHandler {
  /** One-way message (gossip and other fire-and-forget traffic). */
  onMessage(from: NodeId, message: WireMessage): void;
  /** A request expecting one reply; throwing sends the error back to the caller. */
  onRequest(from: NodeId, message: WireMessage): Promise<WireMessage>;
}

/**
 * Node-to-node messaging. Delivery is best effort: messages may be lost,
 * delayed, duplicated or reordered (the simulator does all four), so
 * protocols must be idempotent and must time out.
 */
export interface Transport {
  readonly localId: NodeId;
  /** Tells the transport where a node listens ("host:port"; an id in the simulator). */
  setAddress(node: NodeId, address: string): void;
  /** Fire and forget. Never throws for an unreachable peer. */
  send(to: NodeId, message: WireMessage): void;
  /**
   * One request, one reply. Rejects with TimeoutError after `timeoutMs`, with
   * UnavailableError when the peer cannot be reached, or with the remote
   * handler's error (same class and code when it was a RingkvError).
   */
  request(to: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage>;
  /**
   * Optional: `request` telling `listener` (with the caller's `token`)
   * instead of settling a promise, for a caller sending many (a write's
   * fan-out: no promise, resolving functions or reaction per copy). Answers
   * at once the error `request` would reject with at once, having sent
   * nothing (the listener is then never told); else undefined, and the
   * listener is told once, never inside this call.
   */
  requestThen?(to: NodeId, message: WireMessage, timeoutMs: number, listener: ReplyListener, token: number): Error | undefined;
  /** Contacts a peer known only by address (seeds); resolves with its node id. */
  identify(address: string, timeoutMs: number): Promise<NodeId>;
  setHandler(handler: MessageHandler): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- bundle

/** Everything a deterministic component may touch outside itself. */
export interface Env {
  readonly clock: Clock;
  readonly random: Random;
  readonly fs: FileSystem;
  readonly log: Logger;
}
