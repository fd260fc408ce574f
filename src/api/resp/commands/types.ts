/** The shapes shared by the command table, its handlers and the server. */
import type { Clock, Logger } from '../../../core/index.ts';
import type { ClusterView, Consistency, KvApi, ReadOptions, WriteOptions } from '../../../replication/index.ts';
import type { Settings } from '../../settings.ts';
import type { ReplyWriter } from '../reply.ts';

/** One client connection's state, as CLIENT INFO and the handlers see it. */
export interface ClientState {
  readonly id: number;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly createdMs: number;
  name: string;
  libName: string;
  libVersion: string;
  user: string;
  authenticated: boolean;
  /** Per-connection consistency chosen with RINGKV.CONSISTENCY; undefined: the node's default. */
  readConsistency: Consistency | undefined;
  writeConsistency: Consistency | undefined;
  strictQuorum: boolean | undefined;
  lastCommandMs: number;
  lastCommand: string;
  /** Set by QUIT: close once the pending replies are written. */
  closeAfterReply: boolean;
  readonly out: ReplyWriter;
}

export interface AuthConfig {
  /** Password of the default user: written into the `requirepass` setting at start (CONFIG SET changes it later). */
  password?: string;
  /** Named users and their passwords (`AUTH user pass`). */
  users?: Record<string, string>;
}

export interface ServerStats {
  totalConnections: number;
  rejectedConnections: number;
  totalCommands: number;
  failedCommands: number;
  protocolErrors: number;
  keyspaceHits: number;
  keyspaceMisses: number;
  netInputBytes: number;
  netOutputBytes: number;
}

export interface SlowlogEntry {
  id: number;
  startedSec: number;
  durationUs: number;
  args: string[];
  client: string;
  clientName: string;
}

/** What handlers may reach on the server side. */
export interface ServerState {
  readonly kv: KvApi;
  readonly cluster: ClusterView;
  readonly settings: Settings;
  readonly clock: Clock;
  readonly log: Logger;
  readonly auth: AuthConfig;
  readonly stats: ServerStats;
  readonly startedWallMs: number;
  readonly slowlog: SlowlogEntry[];
  /** The node's default consistency, kept current from the settings (read on every command). */
  readonly defaults: { r: Consistency; w: Consistency; strict: boolean; timeoutMs: number; maxValueBytes: number };
  nextSlowlogId: number;
  clients(): Iterable<ClientState>;
  address(): { host: string; port: number } | undefined;
  extraInfo(): Record<string, Record<string, string | number>>;
  commands(): readonly CommandSpec[];
  lookup(name: string): CommandSpec | undefined;
}

export interface CommandContext {
  readonly client: ClientState;
  readonly server: ServerState;
  readonly out: ReplyWriter;
  /** The command's lower-case name for error texts ('set', 'config|get'). */
  readonly name: string;
  /**
   * Present when the command replies straight into the connection's output:
   * answers +OK now and holds the output back until `durable` settles (a
   * rejection replaces that +OK with its error). Lets a write whose store
   * decided it at once reply without a promise of its own.
   */
  readonly ackWhenDurable?: (durable: Promise<void>, name: string) => void;
}

/** A handler writes its reply to ctx.out, synchronously or before its promise settles. */
export type Handler = (ctx: CommandContext, args: Buffer[]) => void | Promise<void>;

export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'admin'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'fast'
  | 'no_auth'
  | 'random'
  | 'allow_busy';

export interface CommandSpec {
  /** Lower case; subcommands are named 'container|sub' like Redis 7. */
  readonly name: string;
  /** Exact argument count including the name when positive; at least -arity when negative. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly keyStep: number;
  readonly group: string;
  readonly summary: string;
  readonly since: string;
  readonly complexity?: string;
  readonly aclCategories: readonly string[];
  readonly handler?: Handler;
  readonly subcommands?: readonly CommandSpec[];
}

/** The last options built: nearly every command asks for the same ones, so they are reused (frozen: KvApi never changes its options). */
let lastReadOptions: Readonly<ReadOptions> = Object.freeze({});
let lastPlainSetOptions: Readonly<WriteOptions> = Object.freeze({});

/** Options for reads and writes, with this connection's consistency choices over the node's defaults. */
export function readOptions(ctx: CommandContext): ReadOptions {
  const d = ctx.server.defaults;
  const r = ctx.client.readConsistency ?? d.r;
  const strict = ctx.client.strictQuorum ?? d.strict;
  const last = lastReadOptions;
  if (last.r === r && last.strict === strict && last.timeoutMs === d.timeoutMs) return last;
  lastReadOptions = Object.freeze({ r, strict, timeoutMs: d.timeoutMs });
  return lastReadOptions;
}

/** `writeOptions(ctx, { expiresAtMs: null, overwrite: true })` (a plain SET), reused like readOptions. */
export function plainSetOptions(ctx: CommandContext): WriteOptions {
  const d = ctx.server.defaults;
  const w = ctx.client.writeConsistency ?? d.w;
  const strict = ctx.client.strictQuorum ?? d.strict;
  const last = lastPlainSetOptions;
  if (last.w === w && last.strict === strict && last.timeoutMs === d.timeoutMs) return last;
  lastPlainSetOptions = Object.freeze({ w, strict, timeoutMs: d.timeoutMs, expiresAtMs: null, overwrite: true });
  return lastPlainSetOptions;
}

let lastLentSetOptions: Readonly<WriteOptions> = Object.freeze({});

/** plainSetOptions with `lent` (WriteOptions.lent): for a SET whose key and value are views of the connection's input. */
export function plainLentSetOptions(ctx: CommandContext): WriteOptions {
  const plain = plainSetOptions(ctx);
  const last = lastLentSetOptions;
  if (last.w === plain.w && last.strict === plain.strict && last.timeoutMs === plain.timeoutMs) return last;
  lastLentSetOptions = Object.freeze({ ...plain, lent: true });
  return lastLentSetOptions;
}

export function writeOptions(ctx: CommandContext, extra: WriteOptions = {}): WriteOptions {
  const d = ctx.server.defaults;
  return { w: ctx.client.writeConsistency ?? d.w, strict: ctx.client.strictQuorum ?? d.strict, timeoutMs: d.timeoutMs, ...extra };
}
