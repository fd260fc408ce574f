/**
 * The RESP front end: a TCP server speaking RESP2/RESP3 to redis-cli,
 * redis-benchmark and Redis client libraries, over KvApi and ClusterView.
 * This is the protocol layer, so it uses node:net directly; time comes from
 * the injected Clock so TTL arithmetic agrees with the store's.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Clock, Logger } from '../../core/index.ts';
import type { ClusterView, KvApi } from '../../replication/index.ts';
import type { Settings } from '../settings.ts';
import { Connection } from './client.ts';
import type { ConnectionHost, ConnectionLimits } from './client.ts';
import { authRequired } from './commands/connection.ts';
import { CommandTable } from './commands/table.ts';
import type { AuthConfig, ClientState, CommandSpec, ServerState, ServerStats, SlowlogEntry } from './commands/types.ts';
import { defaultParserLimits } from './parser.ts';

export const defaultConnectionLimits: Readonly<ConnectionLimits> = {
  ...defaultParserLimits,
  maxPendingOutputBytes: 256 * 1024 * 1024,
  outputHighWaterBytes: 1024 * 1024,
  queryHighWaterBytes: 4 * 1024 * 1024,
  maxInflightCommands: 64,
};

/** How long close() waits for clients to hang up before cutting them off. */
const closeGraceMs = 2000;

export interface RespServerOptions {
  kv: KvApi;
  cluster: ClusterView;
  settings: Settings;
  clock: Clock;
  log: Logger;
  auth?: AuthConfig;
  /** Called after every command (metrics): lower-case name ('config|get'), duration, success. */
  onCommand?: (name: string, durationMs: number, ok: boolean) => void;
  /** Extra INFO sections from the node (storage, gossip, handoff …). */
  info?: () => Record<string, Record<string, string | number>>;
  limits?: Partial<ConnectionLimits>;
}

export interface RespServerStats extends ServerStats {
  connectedClients: number;
}

export class RespServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly host: ConnectionHost;
  private readonly state: ServerState;
  private readonly limits: ConnectionLimits;
  private readonly unsubscribe: Array<() => void> = [];
  private nextClientId = 1;
  private bound: { host: string; port: number } | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: RespServerOptions) {
    const settings = options.settings;
    if (options.auth?.password !== undefined) settings.set('requirepass', options.auth.password, { force: true });
    this.limits = {
      ...defaultConnectionLimits,
      maxBulkBytes: settings.getInt('proto-max-bulk-len'),
      ...options.limits,
    };
    if (options.limits?.maxBulkBytes === undefined) {
      // Every parser reads this limits object, so the new size applies at once.
      this.unsubscribe.push(settings.onChange('proto-max-bulk-len', (v) => { this.limits.maxBulkBytes = Number(v); }));
    }
    const table = new CommandTable();
    const stats: ServerStats = {
      totalConnections: 0,
      rejectedConnections: 0,
      totalCommands: 0,
      failedCommands: 0,
      protocolErrors: 0,
      keyspaceHits: 0,
      keyspaceMisses: 0,
      netInputBytes: 0,
      netOutputBytes: 0,
    };
    const defaults = {
      r: settings.getConsistency('default-read-consistency'),
      w: settings.getConsistency('default-write-consistency'),
      strict: settings.getBool('default-strict-quorum'),
      timeoutMs: settings.getInt('request-timeout-ms'),
      maxValueBytes: settings.getInt('max-value-bytes'),
    };
    const refresh = (): void => {
      defaults.r = settings.getConsistency('default-read-consistency');
      defaults.w = settings.getConsistency('default-write-consistency');
      defaults.strict = settings.getBool('default-strict-quorum');
      defaults.timeoutMs = settings.getInt('request-timeout-ms');
      defaults.maxValueBytes = settings.getInt('max-value-bytes');
    };
    for (const name of ['default-read-consistency', 'default-write-consistency', 'default-strict-quorum', 'request-timeout-ms', 'max-value-bytes']) {
      this.unsubscribe.push(settings.onChange(name, refresh));
    }
    const slowlog: SlowlogEntry[] = [];
    const connections = this.connections;
    this.state = {
      kv: options.kv,
      cluster: options.cluster,
      settings,
      clock: options.clock,
      log: options.log,
      auth: options.auth ?? {},
      stats,
      startedWallMs: options.clock.wallMs(),
      slowlog,
      defaults,
      nextSlowlogId: 0,
      clients: function* (): Iterable<ClientState> {
        for (const c of connections) yield c.client;
      },
      address: () => this.bound,
      extraInfo: () => options.info?.() ?? {},
      commands: (): readonly CommandSpec[] => table.all,
      lookup: (name: string) => table.lookup(name),
    };
    let slowThreshold = settings.getInt('slowlog-log-slower-than');
    let slowMax = settings.getInt('slowlog-max-len');
    this.unsubscribe.push(settings.onChange('slowlog-log-slower-than', (v) => { slowThreshold = Number(v); }));
    this.unsubscribe.push(settings.onChange('slowlog-max-len', (v) => { slowMax = Number(v); }));
    // Connections whose replies wait for the end of this event-loop turn (Connection.batchDone).
    const flushQueue: Connection[] = [];
    const flushQueued = (): void => {
      // Connections queued while this runs wait for the next turn's run.
      const n = flushQueue.length;
      for (let i = 0; i < n; i++) (flushQueue[i] as Connection).flushQueued();
      flushQueue.splice(0, n);
      if (flushQueue.length > 0) setImmediate(flushQueued);
    };
    this.host = {
      state: this.state,
      table,
      limits: this.limits,
      authRequired: () => authRequired(this.state),
      onCommand: options.onCommand,
      slowlogThresholdUs: () => slowThreshold,
      slowlogMaxLen: () => slowMax,
      closed: (c) => this.connections.delete(c),
      flushSoon: (c) => {
        if (flushQueue.push(c) === 1) setImmediate(flushQueued);
      },
    };
    this.server = createServer((socket) => this.accept(socket));
    this.server.on('error', (error) => options.log.error('RESP server error', { error }));
  }

  private accept(socket: Socket): void {
    const stats = this.state.stats;
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.options.settings.getInt('maxclients')) {
      stats.rejectedConnections++;
      // destroySoon, not end: this socket is never read, so it would not notice the client's FIN.
      socket.on('error', () => {});
      socket.write('-ERR max number of clients reached\r\n');
      socket.destroySoon();
      return;
    }
    stats.totalConnections++;
    const idleSec = this.options.settings.getInt('timeout');
    if (idleSec > 0) {
      socket.setTimeout(idleSec * 1000);
      socket.on('timeout', () => socket.destroy());
    }
    this.connections.add(new Connection(this.host, socket, this.nextClientId++));
  }

  /** Starts listening; port 0 picks a free port. Resolves with the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const address = this.server.address() as AddressInfo;
        this.bound = { host: address.address, port: address.port };
        this.options.log.info('RESP server listening', this.bound);
        resolve(this.bound);
      });
    });
  }

  /** Stops accepting, lets each client finish its command in progress, then closes. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const off of this.unsubscribe) off();
      // A real (ref'd) timer: close() must finish even when nothing else keeps the process alive.
      const grace = setTimeout(() => {
        for (const c of this.connections) c.destroy();
      }, closeGraceMs);
      this.server.close(() => {
        clearTimeout(grace);
        resolve();
      });
      for (const c of this.connections) c.shutdown();
    });
    return this.closing;
  }

  stats(): RespServerStats {
    return { connectedClients: this.connections.size, ...this.state.stats };
  }

  /** Every command in the table (for docs and metrics labels). */
  commands(): readonly CommandSpec[] {
    return this.state.commands();
  }
}
