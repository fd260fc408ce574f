/**
 * The production Transport: real TCP between nodes (docs/protocol/wire.md).
 * One listening socket per node; for each peer one outbound connection that
 * this node dialled and sends all its messages and requests on, so a pair of
 * nodes shares two connections, one per direction. Replies go back on the
 * connection the request came in on.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import {
  ClosedError,
  InvalidArgumentError,
  IoError,
  ProtocolError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  type Clock,
  type Logger,
  type MessageHandler,
  type NodeId,
  type Random,
  type ReplyListener,
  type Transport,
  type WireMessage,
} from '../core/index.ts';
import { formatAddress, parseAddress } from './address.ts';
import { decodeWireMessage, errorToBody, packBody } from './codec.ts';
import { Connection } from './connection.ts';
import { defaultTransportLimits, FrameType, firstIgnorableFrameType, type TransportLimits } from './constants.ts';
import type { Frame } from './frame.ts';
import { Peer, type PeerHost } from './peer.ts';
import { acceptHandshake, dialHandshake, type HandshakeContext } from './session.ts';
import { emptyStats, type TransportStats } from './stats.ts';

/** Longer than any protocol waits; Node's timers overflow past 2^31 - 1 ms anyway. */
export const maxTimeoutMs = 24 * 60 * 60 * 1000;

/** A shared secret shorter than this is too easy to guess offline from a recorded handshake. */
export const minSecretBytes = 16;

export interface TcpTransportOptions {
  readonly nodeId: NodeId;
  /** Nodes of different clusters refuse each other even with the same secret. */
  readonly clusterName: string;
  /** The shared cluster secret (at least 16 bytes). It never crosses the wire. */
  readonly secret: Uint8Array | string;
  /** Interface to listen on; 127.0.0.1 unless set. */
  readonly host?: string;
  /** 0 (the default) picks a free port; read it back from `address`. */
  readonly port?: number;
  /**
   * The host other nodes should dial, when it differs from `host` (listening
   * on 0.0.0.0, or behind NAT). `address` is built from it and the bound port.
   */
  readonly advertiseHost?: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly limits?: Partial<TransportLimits>;
}

function checkLimits(limits: TransportLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`The transport limit ${name} must be a positive number, got ${String(value)}`);
  }
  if (limits.maxQueuedBytesPerPeer < limits.maxFrameBytes + 10) {
    throw new InvalidArgumentError(
      `maxQueuedBytesPerPeer (${limits.maxQueuedBytesPerPeer}) must exceed maxFrameBytes (${limits.maxFrameBytes}), or a largest frame could never be queued`,
    );
  }
}

export class TcpTransport implements Transport {
  readonly localId: NodeId;
  /** "host:port" this node listens on; give it to the other nodes. */
  readonly address: string;
  private readonly ctx: HandshakeContext;
  private readonly limits: TransportLimits;
  private readonly log: Logger;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<Connection>();
  /** Short-lived connections of identify(). */
  private readonly probes = new Set<Connection>();
  private readonly counters = emptyStats();
  private readonly frozenReplies = new WeakMap<WireMessage, Buffer>();
  private readonly peerHost: PeerHost;
  private handler: MessageHandler | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    address: string,
    options: TcpTransportOptions,
    limits: TransportLimits,
    secret: Uint8Array,
  ) {
    this.localId = options.nodeId;
    this.address = address;
    this.limits = limits;
    this.log = options.log.child({ component: 'transport', node: options.nodeId });
    this.ctx = { localId: options.nodeId, clusterName: options.clusterName, secret, clock: options.clock };
    this.peerHost = {
      localId: options.nodeId,
      clock: options.clock,
      random: options.random.fork('transport-backoff'),
      log: this.log,
      limits,
      stats: this.counters,
      dial: (peerAddress, onReady) => this.dial(peerAddress, limits.connectTimeoutMs + limits.handshakeTimeoutMs, onReady).conn,
    };
    server.on('connection', (socket) => this.accept(socket));
    // Accept can fail at run time (EMFILE); the listener stays up and the error is logged, not thrown.
    server.on('error', (error) => this.log.error(`The listening socket on ${address} failed: ${error.message}`, { error }));
  }

  /** Starts listening and resolves once the port is bound. */
  static async listen(options: TcpTransportOptions): Promise<TcpTransport> {
    const limits: TransportLimits = { ...defaultTransportLimits, ...options.limits };
    checkLimits(limits);
    const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
    if (secret.length < minSecretBytes) {
      throw new InvalidArgumentError(`The cluster secret is ${secret.length} bytes: use at least ${minSecretBytes}`);
    }
    if (options.clusterName === '') throw new InvalidArgumentError('The cluster name must not be empty');
    const host = options.host ?? '127.0.0.1';
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: options.port ?? 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      throw new IoError(`Cannot listen on ${formatAddress(host, options.port ?? 0)}: ${(error as Error).message}`, { cause: error });
    });
    const bound = server.address();
    const port = typeof bound === 'object' && bound !== null ? bound.port : (options.port ?? 0);
    return new TcpTransport(server, formatAddress(options.advertiseHost ?? host, port), options, limits, secret);
  }

  setAddress(node: NodeId, address: string): void {
    parseAddress(address);
    if (node === this.localId) return;
    const peer = this.peers.get(node);
    if (peer === undefined) this.peers.set(node, new Peer(node, address, this.peerHost));
    else peer.setAddress(address);
  }

  setHandler(handler: MessageHandler): void {
    this.handler = handler;
  }

  send(to: NodeId, message: WireMessage): void {
    if (this.closing !== undefined) return;
    if (to === this.localId) {
      this.loopbackMessage(message);
      return;
    }
    const peer = this.peers.get(to);
    if (peer === undefined) {
      this.counters.messagesDropped++;
      return;
    }
    peer.send(message);
  }

  request(to: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    if (this.closing !== undefined) {
      return Promise.reject(new ClosedError(`Cannot send "${message.type}" to node ${to}: the transport of node ${this.localId} is closed`));
    }
    if (!(timeoutMs >= 0 && timeoutMs <= maxTimeoutMs)) {
      // A NaN or negative timeout would leave the request waiting forever.
      return Promise.reject(new InvalidArgumentError(`A request timeout must be from 0 to ${maxTimeoutMs} ms, got ${timeoutMs}`));
    }
    if (to === this.localId) return this.loopbackRequest(message, timeoutMs);
    const peer = this.peers.get(to);
    if (peer === undefined) {
      this.counters.requestsUnavailable++;
      return Promise.reject(new UnavailableError(`Cannot reach node ${to}: no address is known for it`, { answered: 0, required: 1 }));
    }
    return peer.request(message, timeoutMs);
  }

  /**
   * `request` telling `listener` once, with `token`, instead of settling a
   * promise (the coordinator's kv.apply fan-out: no promise, resolving
   * functions or reactions per copy). Answers the error `request` would
   * reject with at once, having sent nothing (the listener is then never
   * told), else undefined.
   */
  requestThen(to: NodeId, message: WireMessage, timeoutMs: number, listener: ReplyListener, token: number): Error | undefined {
    if (this.closing !== undefined) return new ClosedError(`Cannot send "${message.type}" to node ${to}: the transport of node ${this.localId} is closed`);
    if (!(timeoutMs >= 0 && timeoutMs <= maxTimeoutMs)) return new InvalidArgumentError(`A request timeout must be from 0 to ${maxTimeoutMs} ms, got ${timeoutMs}`);
    if (to === this.localId) {
      this.loopbackRequest(message, timeoutMs).then(
        (reply) => listener.replyReceived(token, reply),
        (error: unknown) => listener.requestFailed(token, error instanceof Error ? error : new Error(String(error))),
      );
      return undefined;
    }
    const peer = this.peers.get(to);
    if (peer === undefined) {
      this.counters.requestsUnavailable++;
      return new UnavailableError(`Cannot reach node ${to}: no address is known for it`, { answered: 0, required: 1 });
    }
    return peer.requestThen(message, timeoutMs, listener, token);
  }

  identify(address: string, timeoutMs: number): Promise<NodeId> {
    if (this.closing !== undefined) return Promise.reject(new ClosedError(`Cannot contact ${address}: the transport of node ${this.localId} is closed`));
    try {
      parseAddress(address);
    } catch (error) {
      return Promise.reject(error);
    }
    const { conn, ready } = this.dial(address, timeoutMs, () => {});
    this.probes.add(conn);
    conn.onClose(() => this.probes.delete(conn));
    return ready.then(
      (id) => {
        conn.close({ error: new Error('identify done'), routine: true });
        return id;
      },
      (error: Error) => {
        if (error instanceof TimeoutError || error instanceof ProtocolError || error instanceof UnauthorizedError) throw error;
        throw new UnavailableError(`Cannot reach ${address}: ${error.message}`, { answered: 0, required: 1 }, { cause: error });
      },
    );
  }

  /** A snapshot of the counters, for metrics and tests. */
  stats(): TransportStats & { peers: number; inboundConnections: number } {
    return { ...this.counters, peers: this.peers.size, inboundConnections: this.inbound.size };
  }

  /** Bytes queued towards `node` and requests awaiting its replies (0 for an unknown node). */
  peerLoad(node: NodeId): { queuedBytes: number; pendingRequests: number } {
    const peer = this.peers.get(node);
    return { queuedBytes: peer?.queuedBytes() ?? 0, pendingRequests: peer?.pendingRequests ?? 0 };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const peer of this.peers.values()) peer.shutdown();
    for (const conn of [...this.inbound, ...this.probes]) conn.close({ error: new ClosedError('the transport is closing'), routine: true });
    await closed;
  }

  private dial(address: string, timeoutMs: number, onReady: (conn: Connection, peer: NodeId) => void): { conn: Connection; ready: Promise<NodeId> } {
    const { host, port } = parseAddress(address);
    const socket = connect({ host, port, noDelay: true });
    socket.setKeepAlive(true, 10_000);
    const conn = new Connection(socket, 'outbound', this.log, this.limits.maxHandshakeFrameBytes, address);
    const ready = dialHandshake(conn, this.ctx, timeoutMs, (peer) => onReady(conn, peer));
    // The owner learns of failures through conn.onClose; this only keeps the rejection handled.
    ready.catch(() => {});
    return { conn, ready };
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    if (this.inbound.size >= this.limits.maxInboundConnections) {
      this.log.warn(`Refused a connection from ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}: ${this.inbound.size} connections are open, the limit is ${this.limits.maxInboundConnections}`);
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 10_000);
    const conn = new Connection(socket, 'inbound', this.log, this.limits.maxHandshakeFrameBytes);
    this.inbound.add(conn);
    conn.onClose((reason) => {
      this.inbound.delete(conn);
      if (reason.error instanceof ProtocolError) this.counters.protocolErrors++;
    });
    socket.on('drain', () => this.updateReading(conn));
    acceptHandshake(conn, this.ctx, this.limits.handshakeTimeoutMs, (peer) => {
      this.counters.connectionsAccepted++;
      conn.setMaxFrameBytes(this.limits.maxFrameBytes);
      conn.setFrameHandler((frame) => this.onInboundFrame(conn, peer, frame));
    }).catch((error: unknown) => {
      if (error instanceof UnauthorizedError || error instanceof ProtocolError) this.counters.handshakesRejected++;
    });
  }

  private onInboundFrame(conn: Connection, from: NodeId, frame: Frame): void {
    switch (frame.type) {
      case FrameType.message: {
        const message = decodeWireMessage(frame.body);
        this.counters.messagesReceived++;
        this.deliverMessage(from, message);
        return;
      }
      case FrameType.request: {
        if (frame.requestId === 0) throw new ProtocolError('A request frame must carry a request id other than 0');
        const message = decodeWireMessage(frame.body);
        this.counters.requestsReceived++;
        this.serveRequest(conn, from, frame.requestId, message);
        return;
      }
      default:
        if (frame.type >= firstIgnorableFrameType) return;
        throw new ProtocolError(`Unexpected frame type ${frame.type} from node ${from} on a connection it dialled`);
    }
  }

  private deliverMessage(from: NodeId, message: WireMessage): void {
    try {
      this.handler?.onMessage(from, message);
    } catch (error) {
      // A handler bug must not cost the connection and the messages behind it.
      this.log.error(`The handler for "${message.type}" from node ${from} threw: ${(error as Error).message}`, { error });
    }
  }

  private serveRequest(conn: Connection, from: NodeId, requestId: number, message: WireMessage): void {
    conn.inFlight++;
    this.updateReading(conn);
    this.invoke(from, message).then(
      (reply) => {
        let body: Buffer;
        try {
          body = this.replyBody(reply);
          if (body.length > this.limits.maxFrameBytes) {
            throw new InvalidArgumentError(`The reply to "${message.type}" is ${body.length} bytes: the limit is ${this.limits.maxFrameBytes}`);
          }
        } catch (error) {
          this.log.error(`Cannot send the reply to "${message.type}" to node ${from}: ${(error as Error).message}`);
          this.finishRequest(conn, requestId, FrameType.error, packBody(errorToBody(error)));
          return;
        }
        this.finishRequest(conn, requestId, FrameType.reply, body);
      },
      (error: unknown) => this.finishRequest(conn, requestId, FrameType.error, packBody(errorToBody(error))),
    );
  }

  /**
   * The encoded reply. A frozen reply object (a constant such as an ack) is
   * encoded once and its bytes reused: it cannot have changed since.
   */
  private replyBody(reply: WireMessage): Buffer {
    if (!Object.isFrozen(reply)) return packBody(reply);
    let body = this.frozenReplies.get(reply);
    if (body === undefined) {
      // packBody's result is a scratch buffer the next call overwrites: keep a copy.
      body = Buffer.from(packBody(reply));
      this.frozenReplies.set(reply, body);
    }
    return body;
  }

  private invoke(from: NodeId, message: WireMessage): Promise<WireMessage> {
    const handler = this.handler;
    if (handler === undefined) {
      return Promise.reject(new UnavailableError(`Node ${this.localId} is starting and has no message handler yet`, { answered: 0, required: 1 }));
    }
    try {
      return handler.onRequest(from, message);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private finishRequest(conn: Connection, requestId: number, type: number, body: Buffer): void {
    conn.inFlight--;
    conn.write(type, requestId, body);
    this.updateReading(conn);
  }

  /**
   * Inbound back-pressure: stop reading from a peer that has too many
   * requests in our hands or does not read its replies; TCP then pushes back.
   */
  private updateReading(conn: Connection): void {
    const busy = conn.inFlight >= this.limits.maxInboundInFlightPerConnection || conn.queuedBytes() > this.limits.maxQueuedBytesPerPeer;
    conn.setReading(!busy);
  }

  private loopbackMessage(message: WireMessage): void {
    // Through the codec, so a local delivery sees exactly what a remote one would.
    let copy: WireMessage;
    try {
      copy = decodeWireMessage(Buffer.from(packBody(message)));
    } catch (error) {
      this.log.warn(`Dropped message "${message.type}" to this node: ${(error as Error).message}`);
      this.counters.messagesDropped++;
      return;
    }
    queueMicrotask(() => this.deliverMessage(this.localId, copy));
  }

  private loopbackRequest(message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    let copy: WireMessage;
    try {
      copy = decodeWireMessage(Buffer.from(packBody(message)));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<WireMessage>((resolve, reject) => {
      const timer = this.ctx.clock.setTimer(timeoutMs, () => reject(new TimeoutError(`Node ${this.localId} (this node) did not answer "${message.type}" within ${timeoutMs} ms`)));
      this.invoke(this.localId, copy)
        .then((reply) => decodeWireMessage(Buffer.from(packBody(reply))))
        .then(resolve, reject)
        .finally(() => timer.cancel());
    });
  }
}
