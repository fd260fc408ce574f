/**
 * One RESP connection: feeds socket bytes to the parser, runs the commands
 * in order, and writes the replies of everything parsed from one read in one
 * socket write.
 *
 * Pipelined commands that name keys (by the command table's key positions)
 * and touch keys no running command touches are started without waiting for
 * the ones before them, up to `maxInflightCommands`; their replies are still
 * written in request order. A command on a key already in flight, a command
 * without key positions (connection state, KEYS, FLUSHALL, …) and any error
 * reply first wait for everything in flight, so a GET always sees the SET
 * sent before it and connection-state changes apply to exactly the commands
 * after them. With sync-on-write storage this lets one connection's pipeline
 * share a WAL group commit instead of paying one sync per command.
 *
 * Commands that answer at once (GET and plain SET over a store that can
 * decide them synchronously: KvApi winnerNow/putNow) cost no promise: a
 * socket read is run synchronously up to the first command that has to
 * wait, and a read whose commands all answered is replied to in one write
 * before the data callback returns. A plain GET or SET (no options) is
 * read straight from the socket's bytes (RespParser.peekPlain), without
 * argument buffers or a table lookup.
 *
 * Back-pressure both ways: reading pauses while the socket has more than
 * `outputHighWaterBytes` unsent or the parser holds more than
 * `queryHighWaterBytes` of unprocessed commands; a client whose unsent output
 * still exceeds `maxPendingOutputBytes` is disconnected (Redis's
 * client-output-buffer-limit).
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fnv1a32, fnv1a32Latin1 } from '../../core/index.ts';
import { durableLater, durableNow, wouldWait } from '../../replication/index.ts';
import type { DurabilityListener, ReadOptions } from '../../replication/index.ts';
import { errorReply, noAuthError } from './errors.ts';
import { RespParser, copyArg, plainGet, plainNone } from './parser.ts';
import type { ParserLimits } from './parser.ts';
import { ReplyWriter } from './reply.ts';
import { replyWinner } from './commands/strings.ts';
import { arityOk, arityReply, unknownCommandReply, unknownSubcommandReply } from './commands/table.ts';
import type { CommandTable } from './commands/table.ts';
import type { ClientState, CommandContext, CommandSpec, ServerState } from './commands/types.ts';
import { plainLentSetOptions, readOptions } from './commands/types.ts';

export interface ConnectionLimits extends ParserLimits {
  /** Unsent reply bytes past which the client is disconnected. */
  maxPendingOutputBytes: number;
  /** Unsent reply bytes past which reading pauses until the socket drains. */
  outputHighWaterBytes: number;
  /** Parsed-but-unprocessed bytes past which reading pauses. */
  queryHighWaterBytes: number;
  /**
   * Pipelined commands of one connection that may be in flight at once when
   * they touch disjoint keys (1: strictly one at a time).
   */
  maxInflightCommands: number;
}

/** A pipelined command running beside others: its reply waits in `out` until its turn (none: the first, replying into the connection's own). */
interface Inflight {
  promise: Promise<void> | undefined;
  out: ReplyWriter | undefined;
  keys: string[];
}

/** A command's context as the connection builds it (handlers see it read-only). */
interface MutableContext {
  client: ClientState;
  server: ServerState;
  out: ReplyWriter;
  name: string;
  ackWhenDurable?: (durable: Promise<void>, name: string) => void;
}

/**
 * What `advance` answers while the only thing to wait for is writes
 * acknowledged in place: no promise; the last of them to settle continues
 * the connection (Connection.ackSettled).
 */
const acksPending: unique symbol = Symbol('acksPending');
type AcksPending = typeof acksPending;

/** Length of `+OK\r\n`, the reply an acknowledgement holds in place. */
const okReplyBytes = 5;

/** Keys of writes awaiting durability that a lookup scans; past this many a Set holds them too. */
const ackKeyHashScanMax = 32;

/** Distinct command names a connection matches without a table lookup. */
const recentCommandNames = 4;

/** Slab size of the per-command writers used for concurrent pipelined commands. */
const inflightSlabBytes = 4096;

/** Keys up to this long are read by a plain GET or SET into a reused buffer (ArgScratch). */
const scratchKeyBytes = 512;

/**
 * A plain GET's or SET's key, copied out of the socket chunk into one
 * reused buffer through a view per key length (made once): no allocation
 * per command. Valid until the next call, so only for a callee that keeps
 * nothing of the key (KvApi.winnerNow, putNow with WriteOptions.lent).
 */
class ArgScratch {
  private readonly buf = Buffer.allocUnsafeSlow(scratchKeyBytes);
  private readonly views: Array<Buffer | undefined> = [];

  of(source: Buffer, at: number, length: number): Buffer {
    if (length > scratchKeyBytes) return copyArg(source, at, length);
    let view = this.views[length];
    if (view === undefined) {
      view = this.buf.subarray(0, length);
      this.views[length] = view;
    }
    for (let i = 0; i < length; i++) view[i] = source[at + i] as number;
    return view;
  }
}

/** What a plain GET or SET taken from the parser's bytes did: answered, or left to the general path (having done nothing). */
const plainAnswered = 1;
const plainDeclined = 0;

/** FNV-1a of a key's bytes, in small-integer range (a Set of them holds no heap numbers). */
function keyHash(source: Uint8Array, at: number, length: number): number {
  return fnv1a32(source, at, at + length) & 0x3fffffff;
}

/** keyHash of a key held as a latin1 string (one char per byte). */
function latin1KeyHash(key: string): number {
  return fnv1a32Latin1(key) & 0x3fffffff;
}

/** What a connection needs from its server beyond the handlers' ServerState. */
export interface ConnectionHost {
  readonly state: ServerState;
  readonly table: CommandTable;
  readonly limits: ConnectionLimits;
  authRequired(): boolean;
  onCommand: ((name: string, durationMs: number, ok: boolean) => void) | undefined;
  slowlogThresholdUs(): number;
  slowlogMaxLen(): number;
  closed(connection: Connection): void;
  /** Calls `connection.flushQueued()` once this event-loop turn's input has been read (see batchDone). */
  flushSoon(connection: Connection): void;
}

export class Connection implements DurabilityListener {
  readonly client: ClientState;
  private readonly parser: RespParser;
  private readonly out = new ReplyWriter();
  /** The context of the next command run on `out` (replaced when the command that used it goes on waiting in flight). */
  private ctx: MutableContext;
  /** A parsed command waiting for the commands in flight to finish first. */
  private held: { spec: CommandSpec | undefined; args: Buffer[] } | undefined;
  /** The parser's error, answered once the commands before the bad frame have answered. */
  private parseFailure: unknown;
  private inflight: Inflight[] = [];
  /**
   * Writes answered +OK in `out` that must be durable before `out` is sent,
   * in request order, as parallel arrays (no object per write): each one's
   * durability, its +OK's offset in `out`, its command name.
   */
  private readonly ackDurables: Array<Promise<void> | undefined> = [];
  /** The errors of writes a store reported failed through writeSettled (a failure known by index; undefined: none). */
  private readonly ackErrors: Array<{ error: unknown } | undefined> = [];
  private readonly ackOffsets: number[] = [];
  private readonly ackNames: string[] = [];
  /** Entries in use in the arrays above (they are overwritten, not truncated: truncating frees their storage, and a -P 1 client would regrow it per command). */
  private ackCount = 0;
  /** Acknowledged writes whose durability has not settled yet; one failed among them (which one is found when all have settled). */
  private ackUnsettled = 0;
  private ackFailed = false;
  /** batchDone asked the host to flush this connection at the end of the turn. */
  private flushScheduled = false;
  /** The connection stopped at `acksPending`: the last write to settle continues it. */
  private ackWaiting = false;
  /** drainInflight's wait for the acknowledged writes to settle (only with commands in flight too). */
  private ackWake: (() => void) | undefined;
  /** Shared reactions to every acknowledged write's durability: no closure per write. */
  private readonly ackOk = (): void => this.ackSettled();
  private readonly ackError = (): void => {
    this.ackFailed = true;
    this.ackSettled();
  };
  private readonly ack = (durable: Promise<void>, name: string): void => this.ackWhenDurable(durable, name);
  private readonly inflightKeys = new Set<string>();
  /**
   * Keys of the writes acknowledged in place, as hashes (no string per
   * SET): a command on one of them waits for them. A collision only makes a
   * command wait that need not.
   */
  private readonly ackKeyHashes: number[] = [];
  private ackKeyHashCount = 0;
  /** The hashes as a set too, once there are more than a scan is worth (a Set's clear allocates, so small pipelines scan). */
  private ackKeyHashSet: Set<number> | undefined;
  private readonly writerPool: ReplyWriter[] = [];
  /** Command names as this client last sent them, and their specs (Connection.command). */
  private readonly recentNames: Uint8Array[] = [];
  private readonly recentSpecs: CommandSpec[] = [];
  /** The table's GET and SET, answered straight from the parser's bytes when plain (Connection.plainGet/plainSet). */
  private readonly getSpec: CommandSpec | undefined;
  private readonly setSpec: CommandSpec | undefined;
  private readonly keyScratch = new ArgScratch();
  /** readOptions with this batch's wall time (ReadOptions.nowWallMs), for plain GETs; rebuilt when readOptions changes. */
  private plainReadOptions: ReadOptions & { nowWallMs: number } = { nowWallMs: 0 };
  private plainReadBase: ReadOptions | undefined;
  /** Wall time read once per batch of commands (Redis caches its time per event-loop turn): a plain GET's expiry check. */
  private batchWallMs = 0;
  /** performance.now() when the last command finished (or the batch began): a plain command's start, so it reads the timer once. */
  private tick = 0;
  private busy = false;
  private ended = false;
  private pausedForOutput = false;
  private pausedForInput = false;

  constructor(
    private readonly host: ConnectionHost,
    private readonly socket: Socket,
    id: number,
  ) {
    const now = host.state.clock.nowMs();
    this.client = {
      id,
      remoteAddress: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`,
      createdMs: now,
      name: '',
      libName: '',
      libVersion: '',
      user: 'default',
      authenticated: !host.authRequired(),
      readConsistency: undefined,
      writeConsistency: undefined,
      strictQuorum: undefined,
      lastCommandMs: now,
      lastCommand: 'NULL',
      closeAfterReply: false,
      out: this.out,
    };
    this.parser = new RespParser(host.limits);
    this.parser.restricted = !this.client.authenticated;
    this.getSpec = host.table.command('get');
    this.setSpec = host.table.command('set');
    this.ctx = { client: this.client, server: host.state, out: this.out, name: '', ackWhenDurable: this.ack };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.finish());
    socket.on('close', () => this.finish());
  }

  /** Stops reading and closes once the command in progress has answered. */
  shutdown(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.busy) this.socket.destroySoon();
  }

  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }

  private finish(): void {
    this.ended = true;
    this.host.closed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.host.state.stats.netInputBytes += chunk.length;
    this.parser.feed(chunk);
    if (this.busy) {
      if (!this.pausedForInput && this.parser.bufferedBytes > this.host.limits.queryHighWaterBytes) {
        this.pausedForInput = true;
        this.socket.pause();
      }
      return;
    }
    this.pump();
  }

  /**
   * Answers what has been parsed. Runs synchronously as long as commands
   * answer synchronously (the usual case for GET and SET over a local
   * store), so a socket read whose commands need no waiting costs no promise
   * and its replies leave in one write; it continues asynchronously from the
   * first thing it must wait for.
   */
  private pump(): void {
    this.busy = true;
    // Once per socket read, not per command: CLIENT LIST shows idle time in whole seconds.
    this.client.lastCommandMs = this.host.state.clock.nowMs();
    this.batchStarts();
    let wait: Promise<void> | AcksPending | undefined;
    try {
      wait = this.advance();
    } catch (error) {
      this.crashed(error);
      return;
    }
    this.proceed(wait);
  }

  /** Goes on after `advance` answered: done, stopped until the acknowledged writes settle, or awaiting a promise. */
  private proceed(wait: Promise<void> | AcksPending | undefined): void {
    if (wait === undefined) this.batchDone();
    else if (wait === acksPending) this.ackWaiting = true;
    else this.resume(wait).catch((error: unknown) => this.crashed(error));
  }

  private async resume(first: Promise<void>): Promise<void> {
    let wait: Promise<void> | AcksPending | undefined = first;
    while (wait !== undefined && wait !== acksPending) {
      await wait;
      this.batchStarts();
      wait = this.advance();
    }
    if (wait === acksPending) this.ackWaiting = true;
    else this.batchDone();
  }

  /**
   * An acknowledged write settled. The last one continues a connection
   * stopped for them here, synchronously, inside the reaction: its replies
   * leave right after the covering fsync, with no further promise or
   * microtask hop.
   */
  private ackSettled(): void {
    if (--this.ackUnsettled > 0) return;
    const wake = this.ackWake;
    if (wake !== undefined) {
      this.ackWake = undefined;
      wake();
    }
    if (!this.ackWaiting) return;
    this.ackWaiting = false;
    // Inside the store's or our own reaction: nothing may escape (a rejection there would be unhandled).
    try {
      let wait: Promise<void> | AcksPending | undefined = this.acksDone();
      if (wait === undefined) {
        this.batchStarts();
        wait = this.advance();
      }
      this.proceed(wait);
    } catch (error) {
      this.crashed(error);
    }
  }

  /** Reads the clocks a batch of synchronously answered commands shares. */
  private batchStarts(): void {
    this.batchWallMs = this.host.state.clock.wallMs();
    this.tick = performance.now();
  }

  /** A bug must cost this connection, never the node. */
  private crashed(error: unknown): void {
    this.host.state.log.error('RESP connection failed', { client: this.client.remoteAddress, error });
    this.busy = false;
    this.destroy();
  }

  /**
   * Runs parsed commands in order until one must be waited for, and returns
   * that wait (call again once it settles), or undefined when every parsed
   * command has answered into `out` (or the connection is closing).
   */
  private advance(): Promise<void> | AcksPending | undefined {
    const held = this.held;
    if (held !== undefined) {
      // It waited for the commands in flight, which have now all answered.
      this.held = undefined;
      const wait = this.dispatch(held.spec, held.args);
      if (wait !== undefined) return wait;
    }
    for (;;) {
      if (this.client.closeAfterReply || this.ended) {
        if (!this.waiting()) return undefined;
        const wait = this.drain();
        if (wait !== undefined) return wait;
        continue;
      }
      // Replies already in `out` precede everything in flight, so they can go now
      // (once the writes they acknowledge are durable).
      if (this.out.pendingBytes >= this.host.limits.outputHighWaterBytes) {
        if (this.ackCount > 0) {
          const wait = this.drain();
          if (wait !== undefined) return wait;
        }
        this.flush();
        this.tick = performance.now();
        // A client that does not read its replies stops being served until it does.
        if (this.socket.writableLength > this.host.limits.outputHighWaterBytes && !this.ended) return this.writable();
      }
      if (this.parseFailure !== undefined) {
        // Commands before the bad frame still get their replies, in order.
        if (this.waiting()) {
          const wait = this.drain();
          if (wait !== undefined) return wait;
          continue;
        }
        this.protocolError(this.parseFailure);
        return undefined;
      }
      if (this.inflight.length === 0) {
        const plain = this.parser.peekPlain();
        if (plain !== plainNone) {
          const answered = plain === plainGet ? this.plainGet() : this.plainSet();
          if (answered === plainAnswered) continue;
          if (answered !== plainDeclined) return answered;
        }
      }
      let args: Buffer[] | undefined;
      try {
        args = this.parser.next();
      } catch (error) {
        this.parseFailure = error;
        continue;
      }
      if (args === undefined) {
        if (!this.waiting()) return undefined;
        const wait = this.drain();
        if (wait !== undefined) return wait;
        continue;
      }
      const wait = this.dispatch(this.command(args[0] as Buffer), args);
      if (wait !== undefined) return wait;
    }
  }

  /**
   * A plain GET answered from the parser's bytes: what `execute` of the
   * table's GET does (counts, hits and misses, lastCommand, the onCommand
   * hook, the slowlog) without argument buffers, a name lookup or arity
   * checks, reading the key through a reused buffer and judging expiry by
   * the batch's wall time. Declined, having done nothing, when the store
   * would have to wait, the key has a write awaiting durability, or anything
   * would throw: the general path then answers it as always.
   */
  private plainGet(): typeof plainAnswered | typeof plainDeclined {
    const spec = this.getSpec;
    const kv = this.host.state.kv;
    if (spec === undefined || kv.winnerNow === undefined || !this.client.authenticated) return plainDeclined;
    const parser = this.parser;
    const input = parser.input;
    if (this.ackCount > 0 && this.mustWaitForAcks(input, parser.plainKeyAt, parser.plainKeyBytes)) return plainDeclined;
    const key = this.keyScratch.of(input, parser.plainKeyAt, parser.plainKeyBytes);
    let winner;
    try {
      winner = kv.winnerNow(key, this.readOptionsNow());
    } catch {
      return plainDeclined;
    }
    if (winner === wouldWait) return plainDeclined;
    this.host.state.stats.totalCommands++;
    this.client.lastCommand = spec.name;
    const ctx = this.ctx;
    ctx.name = spec.name;
    replyWinner(ctx as CommandContext, winner, true);
    this.plainDone(spec, false);
    parser.consumePlain();
    return plainAnswered;
  }

  /**
   * A plain SET answered from the parser's bytes: the table's SET handler
   * (KvApi.putNow with the plain-SET options) and `execute`'s bookkeeping,
   * without the name argument, lookup or arity checks. Declined, having
   * written nothing, when putNow would wait or throw, the value is over the
   * limit (the general path words the error), or it must wait for writes
   * awaiting durability.
   */
  private plainSet(): Promise<void> | AcksPending | typeof plainAnswered | typeof plainDeclined {
    const spec = this.setSpec;
    const state = this.host.state;
    const kv = state.kv;
    if (spec === undefined || kv.putNow === undefined || !this.client.authenticated) return plainDeclined;
    const parser = this.parser;
    const input = parser.input;
    if (parser.plainValueBytes > state.defaults.maxValueBytes) return plainDeclined;
    if (this.ackCount > 0 && this.mustWaitForAcks(input, parser.plainKeyAt, parser.plainKeyBytes)) return plainDeclined;
    // Lent to the store for the call (WriteOptions.lent): it copies what it keeps.
    const key = this.keyScratch.of(input, parser.plainKeyAt, parser.plainKeyBytes);
    const value = input.subarray(parser.plainValueAt, parser.plainValueAt + parser.plainValueBytes);
    let durable;
    try {
      // Told through writeSettled when the store offers it (no promise or reaction of ours per write).
      durable =
        kv.putNowThen !== undefined
          ? kv.putNowThen(key, value, plainLentSetOptions(this.ctx as CommandContext), this, this.ackCount)
          : kv.putNow(key, value, plainLentSetOptions(this.ctx as CommandContext));
    } catch {
      return plainDeclined;
    }
    if (durable === wouldWait) return plainDeclined;
    state.stats.totalCommands++;
    this.client.lastCommand = spec.name;
    this.ctx.name = spec.name;
    const concurrent = this.host.limits.maxInflightCommands > 1;
    if (durable === durableNow) {
      this.out.ok();
    } else {
      // As dispatch does for a handler that acknowledged in place: later commands on the key wait for it.
      this.ackWhenDurable(durable === durableLater ? undefined : durable, spec.name);
      if (concurrent) this.addAckKeyHash(keyHash(input, parser.plainKeyAt, parser.plainKeyBytes));
    }
    this.plainDone(spec, true);
    parser.consumePlain();
    return durable !== durableNow && !concurrent ? (this.drain() ?? plainAnswered) : plainAnswered;
  }

  /** dispatch's rule for a command while writes await durability: it waits when it must run alone or touches their keys. */
  private mustWaitForAcks(input: Buffer, keyAt: number, keyBytes: number): boolean {
    if (this.host.limits.maxInflightCommands <= 1) return true;
    return this.ackKeyHashCount > 0 && this.hasAckKeyHash(keyHash(input, keyAt, keyBytes));
  }

  /** readOptions with the batch's wall time. */
  private readOptionsNow(): ReadOptions {
    const base = readOptions(this.ctx as CommandContext);
    let options = this.plainReadOptions;
    if (base !== this.plainReadBase) {
      this.plainReadBase = base;
      options = { ...base, nowWallMs: 0 };
      this.plainReadOptions = options;
    }
    options.nowWallMs = this.batchWallMs;
    return options;
  }

  /** `done` for a plain GET or SET still in the parser's bytes (the slowlog reads its arguments there). */
  private plainDone(spec: CommandSpec, withValue: boolean): void {
    const now = performance.now();
    const durationMs = now - this.tick;
    this.tick = now;
    if (this.report(spec, durationMs, true)) {
      const parser = this.parser;
      const input = parser.input;
      const at = parser.plainKeyAt;
      const args = [input.subarray(parser.plainNameAt, parser.plainNameAt + 3), input.subarray(at, at + parser.plainKeyBytes)];
      if (withValue) args.push(input.subarray(parser.plainValueAt, parser.plainValueAt + parser.plainValueBytes));
      this.recordSlow(durationMs, args);
    }
  }

  /**
   * The command named by `name`: the few names this connection sent last are
   * matched byte by byte (no string per command), the table asked otherwise.
   */
  private command(name: Buffer): CommandSpec | undefined {
    const names = this.recentNames;
    const length = name.length;
    for (let k = 0; k < names.length; k++) {
      const known = names[k] as Uint8Array;
      if (known.length !== length) continue;
      let i = 0;
      while (i < length && known[i] === name[i]) i++;
      if (i === length) return this.recentSpecs[k];
    }
    const spec = this.host.table.command(name.toString('latin1'));
    if (spec !== undefined) {
      // Oldest out; an own copy, so the name does not pin the parser's buffer.
      if (names.length >= recentCommandNames) {
        names.pop();
        this.recentSpecs.pop();
      }
      names.unshift(Uint8Array.prototype.slice.call(name));
      this.recentSpecs.unshift(spec);
    }
    return spec;
  }

  /**
   * Starts one command; returns what must be waited for before the next one
   * may start. With nothing in flight a command replies straight into `out`:
   * should it wait, it becomes the first command in flight, and nothing else
   * writes to `out` until it has answered (draining starts with it).
   */
  private dispatch(spec: CommandSpec | undefined, args: Buffer[]): Promise<void> | AcksPending | undefined {
    if (this.inflight.length === 0) {
      if (this.ackCount > 0) {
        // Writes awaiting durability: a command on their keys, or one that must run alone, waits for them.
        const keys = this.concurrentKeys(spec, args);
        if (keys === undefined || this.conflicts(keys)) {
          this.held = { spec, args };
          return this.drain() ?? this.dispatchHeld();
        }
      }
      const acks = this.ackCount;
      const pending = this.execute(spec, args, this.ctx);
      if (this.ackCount > acks) this.ackKeys(spec, args);
      if (pending === undefined) return this.ackCount > acks && this.host.limits.maxInflightCommands <= 1 ? this.drain() : undefined;
      const keys = this.concurrentKeys(spec, args);
      if (keys === undefined) return pending;
      for (const k of keys) this.inflightKeys.add(k);
      this.inflight.push({ promise: pending, out: undefined, keys });
      // The waiting command keeps its context; the next ones get their own.
      this.ctx = { client: this.client, server: this.host.state, out: this.out, name: '', ackWhenDurable: this.ack };
      return undefined;
    }
    const keys = this.concurrentKeys(spec, args);
    if (keys === undefined || this.inflight.length >= this.host.limits.maxInflightCommands || this.conflicts(keys)) {
      this.held = { spec, args };
      return this.drain() ?? this.dispatchHeld();
    }
    this.startConcurrent(spec as CommandSpec, args, keys);
    return undefined;
  }

  /** The held command, once what it waited for settled without a wait. */
  private dispatchHeld(): Promise<void> | AcksPending | undefined {
    const held = this.held;
    if (held === undefined) return undefined;
    this.held = undefined;
    return this.dispatch(held.spec, held.args);
  }

  /** The batch is answered: send it, and close or resume reading as due. */
  private batchDone(): void {
    this.busy = false;
    if (this.client.closeAfterReply || this.ended) {
      this.flush();
      this.ended = true;
      this.socket.destroySoon();
      return;
    }
    // Sent after every socket read of this turn, as Redis writes its replies
    // before it sleeps: the clients' replies then leave back to back, and a
    // client woken by the first finds the rest waiting instead of being woken
    // (and its core interrupted) once per reply. Order is kept: `out` only grows.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.host.flushSoon(this);
    }
    if (this.pausedForInput) {
      this.pausedForInput = false;
      if (!this.pausedForOutput) this.socket.resume();
    }
  }

  /** Resolves when the socket has drained or closed. */
  private writable(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private onDrain(): void {
    if (this.pausedForOutput) {
      this.pausedForOutput = false;
      if (!this.pausedForInput) this.socket.resume();
    }
  }

  private writer(): ReplyWriter {
    const out = this.writerPool.pop() ?? new ReplyWriter(inflightSlabBytes);
    out.protocol = this.out.protocol;
    return out;
  }

  /**
   * The keys of a command that may run beside others, or undefined when it
   * must run alone: no key positions, a container command, an error reply to
   * give, or concurrency turned off.
   */
  private concurrentKeys(spec: CommandSpec | undefined, args: Buffer[]): string[] | undefined {
    if (this.host.limits.maxInflightCommands <= 1 || !this.client.authenticated) return undefined;
    if (spec === undefined || spec.firstKey <= 0 || spec.subcommands !== undefined || !arityOk(spec, args.length)) return undefined;
    const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
    const step = spec.keyStep > 0 ? spec.keyStep : 1;
    const keys: string[] = [];
    for (let i = spec.firstKey; i <= last && i < args.length; i += step) keys.push((args[i] as Buffer).toString('latin1'));
    return keys;
  }

  private conflicts(keys: string[]): boolean {
    if (this.inflightKeys.size !== 0) for (const k of keys) if (this.inflightKeys.has(k)) return true;
    if (this.ackKeyHashCount !== 0) for (const k of keys) if (this.hasAckKeyHash(latin1KeyHash(k))) return true;
    return false;
  }

  private startConcurrent(spec: CommandSpec, args: Buffer[], keys: string[]): void {
    const out = this.writer();
    const ctx = { client: this.client, server: this.host.state, out, name: '' };
    const promise = this.execute(spec, args, ctx);
    for (const k of keys) this.inflightKeys.add(k);
    this.inflight.push({ promise, out, keys });
  }

  /** True while a command is in flight or a reply waits for its write to be durable. */
  private waiting(): boolean {
    return this.inflight.length > 0 || this.ackCount > 0;
  }

  /**
   * What to wait for before the next command: the commands in flight (a
   * promise), or only writes acknowledged in place (`acksPending`, no
   * promise), or nothing when those have all settled already (their replies
   * are then final in `out`).
   */
  private drain(): Promise<void> | AcksPending | undefined {
    if (this.inflight.length > 0) return this.drainInflight();
    if (this.ackUnsettled > 0) return acksPending;
    return this.acksDone();
  }

  /**
   * Waits for every command in flight, appending their replies in request
   * order, and for every write whose reply is already in `out` to be
   * durable (a failed one has its reply replaced by its error).
   */
  private async drainInflight(): Promise<void> {
    const running = this.inflight;
    this.inflight = [];
    for (const c of running) {
      if (c.promise !== undefined) await c.promise;
      if (c.out === undefined) continue;
      this.out.appendFrom(c.out);
      this.writerPool.push(c.out);
    }
    if (this.ackCount > 0) {
      if (this.ackUnsettled > 0) await new Promise<void>((resolve) => (this.ackWake = resolve));
      const failed = this.acksDone();
      if (failed !== undefined) await failed;
    }
    this.inflightKeys.clear();
  }

  /**
   * Every acknowledged write has settled: their +OKs in `out` are final,
   * and undefined is answered, unless one failed. Finding which one awaits
   * each (all settled, so in one pass); a failed write gets its error in
   * place of its +OK, as if it had been answered after waiting.
   */
  private acksDone(): Promise<void> | undefined {
    if (!this.ackFailed) {
      this.clearAcks();
      return undefined;
    }
    this.ackFailed = false;
    const n = this.ackCount;
    const failed = this.replaceFailedAcks(this.ackDurables.slice(0, n), this.ackErrors.slice(0, n), this.ackOffsets.slice(0, n), this.ackNames.slice(0, n));
    this.clearAcks();
    return failed;
  }

  private clearAcks(): void {
    this.ackCount = 0;
    if (this.ackKeyHashCount > ackKeyHashScanMax) this.ackKeyHashSet?.clear();
    this.ackKeyHashCount = 0;
  }

  private addAckKeyHash(hash: number): void {
    const n = this.ackKeyHashCount++;
    this.ackKeyHashes[n] = hash;
    if (n < ackKeyHashScanMax) return;
    let set = this.ackKeyHashSet;
    if (set === undefined) set = this.ackKeyHashSet = new Set();
    if (n === ackKeyHashScanMax) for (let i = 0; i < n; i++) set.add(this.ackKeyHashes[i] as number);
    set.add(hash);
  }

  private hasAckKeyHash(hash: number): boolean {
    const n = this.ackKeyHashCount;
    if (n > ackKeyHashScanMax) return (this.ackKeyHashSet as Set<number>).has(hash);
    const hashes = this.ackKeyHashes;
    for (let i = 0; i < n; i++) if (hashes[i] === hash) return true;
    return false;
  }

  private async replaceFailedAcks(durables: Array<Promise<void> | undefined>, errors: Array<{ error: unknown } | undefined>, offsets: number[], names: string[]): Promise<void> {
    let shift = 0;
    for (let i = 0; i < offsets.length; i++) {
      let failure = errors[i];
      const durable = durables[i];
      if (failure === undefined && durable !== undefined) {
        try {
          await durable;
        } catch (error) {
          failure = { error };
        }
      }
      if (failure === undefined) continue;
      this.host.state.stats.failedCommands++;
      const name = names[i] as string;
      shift += this.out.replaceWithError((offsets[i] as number) + shift, okReplyBytes, errorReply(failure.error, this.host.state.log, name));
    }
  }

  /**
   * CommandContext.ackWhenDurable for commands replying into `out`: the +OK
   * goes in now (no promise, no writer of its own), and `out` is not sent
   * until `durable` settles. One reaction per write, shared by all.
   */
  private ackWhenDurable(durable: Promise<void> | undefined, name: string): void {
    const n = this.ackCount++;
    this.ackDurables[n] = durable;
    this.ackErrors[n] = undefined;
    this.ackOffsets[n] = this.out.pendingBytes;
    this.ackNames[n] = name;
    this.ackUnsettled++;
    this.out.ok();
    // Undefined: the store tells writeSettled.
    if (durable !== undefined) durable.then(this.ackOk, this.ackError);
  }

  /** DurabilityListener: the write acknowledged at index `token` settled (KvApi.putNowThen). */
  writeSettled(token: number, failed: boolean, error: unknown): void {
    if (failed) {
      this.ackErrors[token] = { error };
      this.ackFailed = true;
    }
    this.ackSettled();
  }

  /** The keys of the acknowledgement just added: later commands on them wait for it. */
  private ackKeys(spec: CommandSpec | undefined, args: Buffer[]): void {
    const keys = this.concurrentKeys(spec, args);
    if (keys !== undefined) for (const k of keys) this.addAckKeyHash(latin1KeyHash(k));
  }

  /** ConnectionHost.flushSoon's callback: sends what batchDone left in `out`. */
  flushQueued(): void {
    this.flushScheduled = false;
    this.flush();
  }

  private flush(): void {
    const chunks = this.out.takeForWrite();
    if (chunks === undefined || this.socket.destroyed) return;
    let bytes = 0;
    if (!Array.isArray(chunks)) {
      bytes = chunks.length;
      this.socket.write(chunks);
    } else if (chunks.length === 1) {
      const only = chunks[0] as Buffer;
      bytes = only.length;
      this.socket.write(only);
    } else {
      this.socket.cork();
      for (const c of chunks) {
        bytes += c.length;
        this.socket.write(c);
      }
      this.socket.uncork();
    }
    this.host.state.stats.netOutputBytes += bytes;
    const unsent = this.socket.writableLength;
    if (unsent > this.host.limits.maxPendingOutputBytes) {
      this.host.state.log.warn('disconnecting a RESP client whose unread replies exceed the limit', {
        client: this.client.remoteAddress,
        unsentBytes: unsent,
        limitBytes: this.host.limits.maxPendingOutputBytes,
      });
      this.destroy();
    } else if (unsent > this.host.limits.outputHighWaterBytes && !this.pausedForOutput) {
      this.pausedForOutput = true;
      this.socket.pause();
    }
  }

  private protocolError(error: unknown): void {
    this.host.state.stats.protocolErrors++;
    const message = error instanceof Error ? error.message : String(error);
    this.out.error(`ERR ${message}`);
    this.host.state.log.debug('closing a RESP connection after a protocol error', { client: this.client.remoteAddress, error: message });
    this.ended = true;
    this.busy = false;
    this.flush();
    this.socket.destroySoon();
    // A client that keeps sending must not hold the socket open.
    this.socket.pause();
  }

  /** Runs one command, replying into ctx.out; returns a promise only when the handler is asynchronous. */
  private execute(found: CommandSpec | undefined, args: Buffer[], ctx: MutableContext): Promise<void> | undefined {
    const out = ctx.out;
    const host = this.host;
    const state = host.state;
    const client = this.client;
    let spec = found;
    state.stats.totalCommands++;
    if (spec === undefined) return this.reject(out, unknownCommandReply(args));
    if (!arityOk(spec, args.length)) return this.reject(out, arityReply(spec.name));
    if (spec.subcommands !== undefined && (spec.handler === undefined || args.length > 1)) {
      const container = spec;
      const subArg = args[1] as Buffer | undefined;
      spec = subArg === undefined ? undefined : host.table.subcommand(container.name, subArg.toString('latin1'));
      if (spec === undefined) return this.reject(out, subArg === undefined ? arityReply(container.name) : unknownSubcommandReply(container.name, subArg));
      if (!arityOk(spec, args.length)) return this.reject(out, arityReply(spec.name));
    }
    if (!client.authenticated && !spec.flags.includes('no_auth')) return this.reject(out, noAuthError().reply);
    const handler = spec.handler;
    if (handler === undefined) return this.reject(out, arityReply(spec.name));
    client.lastCommand = spec.name;
    ctx.name = spec.name;
    const started = performance.now();
    let result: void | Promise<void>;
    try {
      result = handler(ctx as CommandContext, args);
    } catch (error) {
      this.fail(ctx.out, spec, error, started, args);
      return undefined;
    }
    if (result === undefined) {
      this.done(spec, started, true, args);
      return undefined;
    }
    const s = spec;
    return result.then(
      () => this.done(s, started, true, args),
      (error: unknown) => this.fail(ctx.out, s, error, started, args),
    );
  }

  private reject(out: ReplyWriter, reply: string): undefined {
    this.host.state.stats.failedCommands++;
    out.error(reply);
    return undefined;
  }

  private fail(out: ReplyWriter, spec: CommandSpec, error: unknown, started: number, args: Buffer[]): void {
    this.host.state.stats.failedCommands++;
    out.error(errorReply(error, this.host.state.log, spec.name));
    this.done(spec, started, false, args);
  }

  private done(spec: CommandSpec, started: number, ok: boolean, args: Buffer[]): void {
    const now = performance.now();
    // A plain command after this one starts its timing here.
    this.tick = now;
    const durationMs = now - started;
    this.parser.restricted = !this.client.authenticated;
    if (this.report(spec, durationMs, ok)) this.recordSlow(durationMs, args);
  }

  /** Tells the onCommand hook about a finished command; true when it belongs in the slowlog. */
  private report(spec: CommandSpec, durationMs: number, ok: boolean): boolean {
    const host = this.host;
    if (host.onCommand !== undefined) {
      try {
        host.onCommand(spec.name, durationMs, ok);
      } catch (error) {
        host.state.log.warn('the onCommand hook threw', { command: spec.name, error });
      }
    }
    const threshold = host.slowlogThresholdUs();
    return threshold >= 0 && durationMs * 1000 >= threshold;
  }

  private recordSlow(durationMs: number, args: Buffer[]): void {
    const state = this.host.state;
    const maxLen = this.host.slowlogMaxLen();
    if (maxLen <= 0) return;
    // Like Redis: at most 32 arguments of at most 128 bytes each are kept.
    const shown = args.slice(0, 32).map((a) => (a.length > 128 ? `${a.subarray(0, 128).toString()}... (${a.length - 128} more bytes)` : a.toString()));
    if (args.length > 32) shown[31] = `... (${args.length - 31} more arguments)`;
    state.slowlog.unshift({
      id: state.nextSlowlogId++,
      startedSec: Math.floor(state.clock.wallMs() / 1000),
      durationUs: Math.round(durationMs * 1000),
      args: shown,
      client: this.client.remoteAddress,
      clientName: this.client.name,
    });
    if (state.slowlog.length > maxLen) state.slowlog.length = maxLen;
  }
}
