/**
 * A small seeded network for the replication tests and simulation: one
 * VirtualClock, one SeededRandom, and a Transport per node that drops,
 * delays, duplicates (and so reorders) messages and honours partitions and
 * crashed nodes. Messages are deep-copied so nodes share no objects; a remote
 * handler's RingkvError reaches the caller with its class and code.
 */
import type { MessageHandler, NodeId, Random, Transport, WireMessage, VirtualClock } from '../../src/core/index.ts';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  NotFoundError,
  OverloadedError,
  ProtocolError,
  RingkvError,
  TimeoutError,
  UnavailableError,
} from '../../src/core/index.ts';

export interface NetworkFaults {
  /** Probability that one message (request, reply or one-way) is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  minLatencyMs: number;
  maxLatencyMs: number;
}

export const noFaults: NetworkFaults = { dropRate: 0, duplicateRate: 0, minLatencyMs: 1, maxLatencyMs: 1 };

interface Endpoint {
  handler: MessageHandler | undefined;
  /** Bumped on every crash, so replies addressed to a dead instance vanish. */
  incarnation: number;
  up: boolean;
}

interface WireError {
  code: string;
  message: string;
  answered?: number;
  required?: number;
}

function toWireError(error: unknown): WireError {
  if (error instanceof UnavailableError) return { code: error.code, message: error.message, answered: error.answered, required: error.required };
  if (error instanceof RingkvError) return { code: error.code, message: error.message };
  return { code: 'RINGKV_IO', message: error instanceof Error ? error.message : String(error) };
}

function fromWireError(error: WireError): RingkvError {
  switch (error.code) {
    case 'RINGKV_UNAVAILABLE':
      return new UnavailableError(error.message, { answered: error.answered ?? 0, required: error.required ?? 0 });
    case 'RINGKV_TIMEOUT':
      return new TimeoutError(error.message);
    case 'RINGKV_INVALID_ARGUMENT':
      return new InvalidArgumentError(error.message);
    case 'RINGKV_NOT_FOUND':
      return new NotFoundError(error.message);
    case 'RINGKV_OVERLOADED':
      return new OverloadedError(error.message);
    case 'RINGKV_CONFLICT':
      return new ConflictError(error.message);
    case 'RINGKV_CORRUPTION':
      return new CorruptionError(error.message);
    case 'RINGKV_CLOSED':
      return new ClosedError(error.message);
    case 'RINGKV_PROTOCOL':
      return new ProtocolError(error.message);
    default:
      return new IoError(error.message);
  }
}

export class SimNetwork {
  readonly faults: NetworkFaults;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** Directed pairs "a>b" that cannot talk. */
  private readonly blocked = new Set<string>();
  faultsInjected = 0;
  messagesSent = 0;

  constructor(
    readonly clock: VirtualClock,
    private readonly random: Random,
    faults: Partial<NetworkFaults> = {},
  ) {
    this.faults = { ...noFaults, ...faults };
  }

  /** The transport of one node instance; a restart gets a fresh one. */
  transport(node: NodeId): SimTransport {
    const endpoint = this.endpoints.get(node) ?? { handler: undefined, incarnation: 0, up: true };
    endpoint.up = true;
    endpoint.handler = undefined;
    this.endpoints.set(node, endpoint);
    return new SimTransport(this, node, endpoint.incarnation);
  }

  /** The node stops answering; replies meant for its old instance are lost. */
  crash(node: NodeId): void {
    const endpoint = this.endpoints.get(node);
    if (endpoint === undefined) return;
    endpoint.up = false;
    endpoint.handler = undefined;
    endpoint.incarnation++;
  }

  isUp(node: NodeId): boolean {
    return this.endpoints.get(node)?.up ?? false;
  }

  /** Cuts `a` from `b` in both directions (or only a → b when `oneWay`). */
  partition(a: NodeId, b: NodeId, oneWay = false): void {
    this.blocked.add(`${a}>${b}`);
    if (!oneWay) this.blocked.add(`${b}>${a}`);
  }

  /** Splits the nodes into two sides that cannot reach each other. */
  split(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) for (const b of sideB) this.partition(a, b);
  }

  heal(): void {
    this.blocked.clear();
  }

  setFaults(faults: Partial<NetworkFaults>): void {
    Object.assign(this.faults, faults);
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.blocked.has(`${from}>${to}`);
  }

  latency(): number {
    const { minLatencyMs, maxLatencyMs } = this.faults;
    return minLatencyMs + this.random.int(Math.max(1, maxLatencyMs - minLatencyMs + 1));
  }

  /** Whether this copy of a message is lost (counted as an injected fault). */
  lose(from: NodeId, to: NodeId): boolean {
    if (!this.canReach(from, to)) return true;
    if (this.faults.dropRate > 0 && this.random.float() < this.faults.dropRate) {
      this.faultsInjected++;
      return true;
    }
    return false;
  }

  copies(): number {
    if (this.faults.duplicateRate > 0 && this.random.float() < this.faults.duplicateRate) {
      this.faultsInjected++;
      return 2;
    }
    return 1;
  }

  endpoint(node: NodeId): Endpoint | undefined {
    return this.endpoints.get(node);
  }
}

export class SimTransport implements Transport {
  private closed = false;

  constructor(
    private readonly net: SimNetwork,
    readonly localId: NodeId,
    private readonly incarnation: number,
  ) {}

  private alive(): boolean {
    const endpoint = this.net.endpoint(this.localId);
    return !this.closed && endpoint !== undefined && endpoint.up && endpoint.incarnation === this.incarnation;
  }

  setAddress(_node: NodeId, _address: string): void {}

  setHandler(handler: MessageHandler): void {
    const endpoint = this.net.endpoint(this.localId);
    if (endpoint !== undefined && endpoint.incarnation === this.incarnation) endpoint.handler = handler;
  }

  send(to: NodeId, message: WireMessage): void {
    if (!this.alive()) return;
    this.net.messagesSent++;
    const copies = this.net.copies();
    for (let i = 0; i < copies; i++) {
      if (this.net.lose(this.localId, to)) continue;
      const copy = structuredClone(message);
      this.net.clock.setTimer(this.net.latency(), () => {
        const target = this.net.endpoint(to);
        if (target?.up && target.handler) target.handler.onMessage(this.localId, copy);
      });
    }
  }

  request(to: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    if (!this.alive()) return Promise.reject(new ClosedError(`The transport of ${this.localId} is closed`));
    this.net.messagesSent++;
    return new Promise<WireMessage>((resolve, reject) => {
      let settled = false;
      const timer = this.net.clock.setTimer(timeoutMs, () => {
        if (settled) return;
        settled = true;
        reject(new TimeoutError(`No reply from ${to} to ${message.type} within ${timeoutMs} ms`));
      });
      const finish = (reply: WireMessage | undefined, error: WireError | undefined): void => {
        // A reply to a crashed (or restarted) caller has nowhere to go.
        if (settled || !this.alive()) return;
        settled = true;
        timer.cancel();
        if (error !== undefined) reject(fromWireError(error));
        else resolve(reply as WireMessage);
      };
      const copies = this.net.copies();
      for (let i = 0; i < copies; i++) {
        if (this.net.lose(this.localId, to)) continue;
        const copy = structuredClone(message);
        this.net.clock.setTimer(this.net.latency(), () => this.deliver(to, copy, finish));
      }
    });
  }

  private deliver(to: NodeId, message: WireMessage, finish: (reply: WireMessage | undefined, error: WireError | undefined) => void): void {
    const target = this.net.endpoint(to);
    const replyLater = (reply: WireMessage | undefined, error: WireError | undefined): void => {
      if (this.net.lose(to, this.localId)) return;
      const copy = reply === undefined ? undefined : structuredClone(reply);
      this.net.clock.setTimer(this.net.latency(), () => finish(copy, error));
    };
    if (target === undefined || !target.up || target.handler === undefined) {
      // A dead process refuses the connection: the caller learns quickly.
      replyLater(undefined, { code: 'RINGKV_UNAVAILABLE', message: `Node ${to} is unreachable (connection refused)`, answered: 0, required: 1 });
      return;
    }
    const incarnation = target.incarnation;
    target.handler.onRequest(this.localId, message).then(
      (reply) => {
        if (this.net.endpoint(to)?.incarnation === incarnation) replyLater(reply, undefined);
      },
      (error: unknown) => {
        if (this.net.endpoint(to)?.incarnation === incarnation) replyLater(undefined, toWireError(error));
      },
    );
  }

  async identify(address: string, _timeoutMs: number): Promise<NodeId> {
    return address;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
