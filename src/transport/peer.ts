/**
 * The outbound side towards one peer: its connection, the frames waiting for
 * that connection, the requests awaiting replies, and the reconnect backoff.
 * Each node sends only on connections it dialled itself (one per peer), so
 * per-peer ordering needs no tie-break between two simultaneous dials.
 */
import {
  ClosedError,
  InvalidArgumentError,
  OverloadedError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
  type Clock,
  type Logger,
  type NodeId,
  type Random,
  type ReplyListener,
  type Timer,
  type WireMessage,
} from '../core/index.ts';
import { decodeWireMessage, errorFromBody, packBody, unpackBody } from './codec.ts';
import type { Connection } from './connection.ts';
import { FrameType, firstIgnorableFrameType, frameHeaderBytes, type TransportLimits } from './constants.ts';
import type { Frame } from './frame.ts';
import { PendingTable } from './pending.ts';
import type { TransportStats } from './stats.ts';

/** What a Peer needs from its transport. */
export interface PeerHost {
  readonly localId: NodeId;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly limits: TransportLimits;
  readonly stats: TransportStats;
  /** Opens an authenticated connection; `onReady` runs synchronously once the peer has proved itself. */
  dial(address: string, onReady: (conn: Connection, peer: NodeId) => void): Connection;
}

interface PendingRequest {
  readonly id: number;
  readonly type: string;
  resolve(reply: WireMessage): void;
  reject(error: Error): void;
  readonly deadlineMs: number;
  readonly timeoutMs: number;
}

/** A request whose outcome settles a promise (`request`). */
class PromisedRequest implements PendingRequest {
  constructor(
    readonly id: number,
    readonly type: string,
    readonly resolve: (reply: WireMessage) => void,
    readonly reject: (error: Error) => void,
    readonly deadlineMs: number,
    readonly timeoutMs: number,
  ) {}
}

/** A request whose outcome goes to a listener (`requestThen`): no promise, resolving functions or reactions per request. */
class ListenedRequest implements PendingRequest {
  constructor(
    readonly id: number,
    readonly type: string,
    private readonly listener: ReplyListener,
    private readonly token: number,
    private readonly log: Logger,
    readonly deadlineMs: number,
    readonly timeoutMs: number,
  ) {}

  resolve(reply: WireMessage): void {
    try {
      this.listener.replyReceived(this.token, reply);
    } catch (error) {
      // A listener's failure is its own: it must not break the connection's frame handling.
      this.log.error(`A reply listener for "${this.type}" threw: ${(error as Error).message}`);
    }
  }

  reject(error: Error): void {
    try {
      this.listener.requestFailed(this.token, error);
    } catch (thrown) {
      this.log.error(`A reply listener for "${this.type}" threw: ${(thrown as Error).message}`);
    }
  }
}

interface WaitingFrame {
  readonly type: number;
  readonly requestId: number;
  readonly body: Buffer;
}

type PeerState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/**
 * Request timeouts share one timer per peer, armed for the earliest deadline,
 * instead of one timer per request (a timer costs about as much as encoding
 * the request). After a sweep the next one is at least this far away, so a
 * timeout may fire up to this late when many expire one after another.
 */
export const timeoutGranularityMs = 10;

/** How long one "cannot reach" error is handed to every refused request of a backing-off peer. */
export const unreachableReuseMs = 100;

export class Peer {
  private state: PeerState = 'idle';
  private conn: Connection | undefined;
  private waiting: WaitingFrame[] = [];
  private waitingBytes = 0;
  private readonly pending = new PendingTable<PendingRequest>();
  private failures = 0;
  private retryAtMs = 0;
  private lastFailure: Error | undefined;
  private sweepTimer: Timer | undefined;
  private sweepAtMs = Infinity;
  /** The last refusal built by unreachable(), reused while nothing about it changed (unreachableReuseMs). */
  private lastUnreachable: { error: UnavailableError; atMs: number; retryAtMs: number; failure: Error | undefined; address: string } | undefined;

  constructor(
    readonly id: NodeId,
    private addressValue: string,
    private readonly host: PeerHost,
  ) {}

  get address(): string {
    return this.addressValue;
  }

  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Bytes waiting for this peer: frames held during a connect plus the socket's unsent bytes. */
  queuedBytes(): number {
    return this.waitingBytes + (this.conn?.queuedBytes() ?? 0);
  }

  setAddress(address: string): void {
    if (address === this.addressValue) return;
    this.addressValue = address;
    // A fresh address deserves a fresh attempt, not the old address's backoff.
    // Requests already written on an open connection may have been carried out.
    const sent = this.state === 'open';
    this.detach(new UnavailableError(`Node ${this.id} moved to ${address} before it replied`, { answered: 0, required: 1, maybeApplied: sent }), 'idle');
    this.failures = 0;
  }

  send(message: WireMessage): void {
    if (this.state === 'closed') return;
    // Checked first: while a dead peer is in backoff, dropping costs no encoding.
    if (!this.ensureConnection()) {
      this.host.stats.messagesDropped++;
      return;
    }
    const body = this.encode(message);
    if (body === undefined || !this.canQueue(body)) {
      this.host.stats.messagesDropped++;
      return;
    }
    this.host.stats.messagesSent++;
    this.enqueue(FrameType.message, 0, body);
  }

  request(message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    const body = this.requestBody(message);
    if (body instanceof Error) return Promise.reject(body);
    const requestId = this.pending.allocateId();
    this.host.stats.requestsSent++;
    const deadlineMs = this.host.clock.nowMs() + timeoutMs;
    return new Promise<WireMessage>((resolve, reject) => {
      this.sendRequest(new PromisedRequest(requestId, message.type, resolve, reject, deadlineMs, timeoutMs), body);
    });
  }

  /**
   * `request` telling `listener` (with `token`) instead of settling a
   * promise. Answers the error `request` would reject with at once, having
   * sent nothing and never to tell the listener; else undefined.
   */
  requestThen(message: WireMessage, timeoutMs: number, listener: ReplyListener, token: number): Error | undefined {
    const body = this.requestBody(message);
    if (body instanceof Error) return body;
    const requestId = this.pending.allocateId();
    this.host.stats.requestsSent++;
    this.sendRequest(new ListenedRequest(requestId, message.type, listener, token, this.host.log, this.host.clock.nowMs() + timeoutMs, timeoutMs), body);
    return undefined;
  }

  private sendRequest(request: PendingRequest, body: Buffer): void {
    this.pending.add(request);
    if (request.deadlineMs < this.sweepAtMs) this.armSweep(request.deadlineMs);
    this.enqueue(FrameType.request, request.id, body);
  }

  /** The request's encoded body, or why it cannot be sent now. */
  private requestBody(message: WireMessage): Buffer | Error {
    if (this.state === 'closed') return new ClosedError(`Cannot send "${message.type}" to node ${this.id}: the transport is closed`);
    const { maxFrameBytes, maxPendingRequestsPerPeer, maxQueuedBytesPerPeer } = this.host.limits;
    if (!this.ensureConnection()) {
      this.host.stats.requestsUnavailable++;
      return this.unreachable();
    }
    let body: Buffer;
    try {
      body = packBody(message);
    } catch (error) {
      return error instanceof Error ? error : new InvalidArgumentError(`Cannot encode "${message.type}": ${String(error)}`);
    }
    if (body.length > maxFrameBytes) {
      return new InvalidArgumentError(`Cannot send "${message.type}" to node ${this.id} as it is ${body.length} bytes: the limit is ${maxFrameBytes}`);
    }
    if (this.pending.size >= maxPendingRequestsPerPeer) {
      this.host.stats.requestsOverloaded++;
      return new OverloadedError(`Node ${this.id} already has ${this.pending.size} requests awaiting replies: the limit is ${maxPendingRequestsPerPeer}`);
    }
    if (!this.canQueue(body)) {
      this.host.stats.requestsOverloaded++;
      return new OverloadedError(`The send queue to node ${this.id} holds ${this.queuedBytes()} bytes: the limit is ${maxQueuedBytesPerPeer}`);
    }
    return body;
  }

  private armSweep(atMs: number): void {
    this.sweepTimer?.cancel();
    this.sweepAtMs = atMs;
    this.sweepTimer = this.host.clock.setTimer(atMs - this.host.clock.nowMs(), () => this.sweep());
  }

  /** Rejects the requests whose deadline has passed and re-arms for the next one. */
  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAtMs = Infinity;
    // Timers may fire a fraction of a millisecond early by the monotonic clock.
    const now = this.host.clock.nowMs() + 1;
    const expired = this.pending.removeWhere((request) => request.deadlineMs <= now);
    let next = Infinity;
    this.pending.forEach((request) => {
      if (request.deadlineMs < next) next = request.deadlineMs;
    });
    this.host.stats.requestsTimedOut += expired.length;
    for (const request of expired) {
      request.reject(new TimeoutError(`Node ${this.id} did not answer "${request.type}" within ${request.timeoutMs} ms`));
    }
    if (next !== Infinity) this.armSweep(Math.max(next, now + timeoutGranularityMs));
  }

  /** Closes for good: pending requests reject with ClosedError. */
  shutdown(): void {
    this.detach(new ClosedError(`The transport of node ${this.host.localId} was closed before node ${this.id} replied`), 'closed');
  }

  private encode(message: WireMessage): Buffer | undefined {
    try {
      const body = packBody(message);
      if (body.length <= this.host.limits.maxFrameBytes) return body;
      this.host.log.warn(`Dropped message "${message.type}" to node ${this.id} as it is ${body.length} bytes: the limit is ${this.host.limits.maxFrameBytes}`);
    } catch (error) {
      this.host.log.warn(`Dropped message "${message.type}" to node ${this.id}: ${(error as Error).message}`);
    }
    return undefined;
  }

  private canQueue(body: Buffer): boolean {
    return this.queuedBytes() + body.length + frameHeaderBytes <= this.host.limits.maxQueuedBytesPerPeer;
  }

  /** True when frames can be queued now (open or connecting); starts a connect when due. */
  private ensureConnection(): boolean {
    switch (this.state) {
      case 'open':
      case 'connecting':
        return true;
      case 'closed':
        return false;
      case 'backoff':
        if (this.host.clock.nowMs() < this.retryAtMs) return false;
        this.connect();
        return true;
      case 'idle':
        this.connect();
        return true;
    }
  }

  private connect(): void {
    this.state = 'connecting';
    const conn = this.host.dial(this.addressValue, (ready, peerId) => this.onReady(ready, peerId));
    this.conn = conn;
    conn.onClose((reason) => this.lost(conn, reason.error));
  }

  private onReady(conn: Connection, peerId: NodeId): void {
    if (conn !== this.conn) return;
    if (peerId !== this.id) {
      conn.close({ error: new UnavailableError(`The address ${this.addressValue} belongs to node ${peerId}, not node ${this.id}`, { answered: 0, required: 1 }), routine: false });
      return;
    }
    if (this.failures > 0) this.host.log.info(`Connected to node ${this.id} at ${this.addressValue} after ${this.failures} failed attempts`);
    this.state = 'open';
    this.failures = 0;
    this.lastFailure = undefined;
    this.host.stats.connectionsOpened++;
    conn.setMaxFrameBytes(this.host.limits.maxFrameBytes);
    conn.setFrameHandler((frame) => this.onFrame(frame));
    for (const frame of this.waiting) conn.write(frame.type, frame.requestId, frame.body);
    this.waiting = [];
    this.waitingBytes = 0;
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.reply: {
        const reply = decodeWireMessage(frame.body);
        this.settle(frame.requestId)?.resolve(reply);
        return;
      }
      case FrameType.error: {
        const error = errorFromBody(unpackBody(frame.body), this.id);
        if (frame.requestId === 0) throw new ProtocolError(`Node ${this.id} closed the connection: ${error.message}`);
        this.settle(frame.requestId)?.reject(error);
        return;
      }
      default:
        if (frame.type >= firstIgnorableFrameType) return;
        throw new ProtocolError(`Unexpected frame type ${frame.type} from node ${this.id} on a connection this node dialled`);
    }
  }

  /** Removes a pending request; undefined for a late reply after its timeout. */
  private settle(requestId: number): PendingRequest | undefined {
    return this.pending.take(requestId);
  }

  /** `body` may be packBody's scratch buffer: it is copied before this returns. */
  private enqueue(type: number, requestId: number, body: Buffer): void {
    if (this.state === 'open' && this.conn !== undefined) {
      this.conn.write(type, requestId, body);
    } else {
      this.waiting.push({ type, requestId, body: Buffer.from(body) });
      this.waitingBytes += body.length + frameHeaderBytes;
    }
  }

  private lost(conn: Connection, error: Error): void {
    if (conn !== this.conn) return;
    const wasOpen = this.state === 'open';
    this.failures++;
    const ceilingMs = Math.min(this.host.limits.maxBackoffMs, this.host.limits.baseBackoffMs * 2 ** Math.min(this.failures - 1, 30));
    // Equal jitter: at least half the ceiling, so retries spread out but never hammer.
    const delayMs = ceilingMs / 2 + (this.host.random.float() * ceilingMs) / 2;
    this.retryAtMs = this.host.clock.nowMs() + delayMs;
    this.lastFailure = error;
    const fields = { peer: this.id, address: this.addressValue, reason: error.message, failures: this.failures, retryInMs: Math.round(delayMs) };
    if (wasOpen) this.host.log.info(`Lost the connection to node ${this.id} at ${this.addressValue}: ${error.message}`, fields);
    else if (this.failures === 1) this.host.log.warn(`Cannot connect to node ${this.id} at ${this.addressValue}: ${error.message}`, fields);
    else this.host.log.debug(`Cannot connect to node ${this.id}`, fields);
    const failure = wasOpen
      ? new UnavailableError(
          `The connection to node ${this.id} at ${this.addressValue} closed before it replied (the request may have been applied): ${error.message}`,
          { answered: 0, required: 1, maybeApplied: true },
          { cause: error },
        )
      : this.unreachable();
    this.detach(failure, 'backoff');
  }

  private unreachable(): UnavailableError {
    const nowMs = this.host.clock.nowMs();
    const last = this.lastUnreachable;
    // While a peer backs off every request to it is refused; building an error
    // (and its stack trace) per refusal was measurable when a dead replica
    // still got a share of the writes. One is reused for a short while, so its
    // "next attempt in" may be up to unreachableReuseMs stale.
    if (last !== undefined && last.retryAtMs === this.retryAtMs && last.failure === this.lastFailure && last.address === this.addressValue && nowMs - last.atMs < unreachableReuseMs) {
      return last.error;
    }
    const why = this.lastFailure?.message ?? 'no connection';
    const retryInMs = Math.max(0, Math.round(this.retryAtMs - nowMs));
    const error = new UnavailableError(
      `Cannot reach node ${this.id} at ${this.addressValue}: ${why}; next attempt in ${retryInMs} ms`,
      { answered: 0, required: 1 },
      this.lastFailure === undefined ? undefined : { cause: this.lastFailure },
    );
    this.lastUnreachable = { error, atMs: nowMs, retryAtMs: this.retryAtMs, failure: this.lastFailure, address: this.addressValue };
    return error;
  }

  /** Drops the connection and everything queued on it, rejecting pending requests with `error`. */
  private detach(error: Error, next: PeerState): void {
    const conn = this.conn;
    this.conn = undefined;
    this.state = next;
    if (conn?.isOpen) conn.close({ error, routine: true });
    const droppedMessages = this.waiting.filter((f) => f.type === FrameType.message).length;
    this.host.stats.messagesDropped += droppedMessages;
    this.waiting = [];
    this.waitingBytes = 0;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.sweepAtMs = Infinity;
    if (this.pending.size === 0) return;
    const pending = this.pending.removeWhere(() => true);
    if (error instanceof UnavailableError) this.host.stats.requestsUnavailable += pending.length;
    for (const request of pending) request.reject(error);
  }
}
