/**
 * A simulated network: one Transport per node over a shared clock and a
 * seeded random stream. It loses, delays (a minimum plus an exponential
 * tail, which also reorders), duplicates and partitions (symmetric or one
 * way) messages, at rates the caller sets and may change mid-run. Payloads
 * are deep-copied on delivery, so nodes share no objects, as over a socket.
 * Every decision draws from the one random stream in event order, so the same
 * seed replays the same run.
 */
import {
  ClosedError,
  InvalidArgumentError,
  TimeoutError,
  UnavailableError,
  type Clock,
  type MessageHandler,
  type NodeId,
  type Random,
  type Timer,
  type Transport,
  type WireMessage,
} from '../src/core/index.ts';
import { errorFromWire, errorToWire, type WireError } from './wire-errors.ts';

export interface NetworkFaults {
  /** Probability that one message (request, reply or one-way) is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicateRate: number;
  minLatencyMs: number;
  /** Mean of the exponential delay added to minLatencyMs; a larger tail reorders more. */
  meanJitterMs: number;
  /** Delays are capped here, so a run's timing stays bounded. */
  maxLatencyMs: number;
}

export const defaultFaults: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  minLatencyMs: 1,
  meanJitterMs: 0,
  maxLatencyMs: 100,
};

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Messages lost to a partition. */
  partitioned: number;
  /** Messages that overtook an earlier message on the same link. */
  reordered: number;
  /** Messages or requests to an address where no node runs (a crashed node). */
  refused: number;
  /** Messages delayed by a slow node's extra latency. */
  slowed: number;
  /** Connections reset between live nodes (resetConnection). */
  resets: number;
}

export type TraceSink = (line: string) => void;

type Envelope =
  | { kind: 'msg'; message: WireMessage }
  | { kind: 'req'; id: number; message: WireMessage }
  | { kind: 'identify'; id: number }
  | { kind: 'res'; id: number; ok: true; message: WireMessage }
  | { kind: 'res'; id: number; ok: false; error: WireError }
  | { kind: 'ident-res'; id: number; nodeId: NodeId };

/** A request's reply travels back on its connection: to the same process only. */
interface Connection {
  readonly from: SimTransport;
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

export class SimNetwork {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, partitioned: 0, reordered: 0, refused: 0, slowed: 0, resets: 0 };
  faults: NetworkFaults;
  private readonly byAddress = new Map<string, SimTransport>();
  private readonly byId = new Map<NodeId, SimTransport>();
  private readonly blocked = new Set<string>();
  private readonly slowMs = new Map<NodeId, number>();
  private readonly lastArrival = new Map<string, number>();
  private nextRequestId = 1;

  constructor(
    readonly clock: Clock,
    private readonly random: Random,
    faults: Partial<NetworkFaults> = {},
    private readonly trace: TraceSink = () => {},
  ) {
    this.faults = { ...defaultFaults, ...faults };
  }

  /** Starts a node's transport at `address`; the previous one at that address must be gone. */
  attach(id: NodeId, address: string): SimTransport {
    if (this.byAddress.has(address)) throw new InvalidArgumentError(`Address ${address} is already in use in the simulated network`);
    if (this.byId.has(id)) throw new InvalidArgumentError(`Node ${id} is already attached to the simulated network`);
    const transport = new SimTransport(this, id, address);
    this.byAddress.set(address, transport);
    this.byId.set(id, transport);
    this.trace(`${this.clock.nowMs()} net attach ${id} ${address}`);
    return transport;
  }

  /** Removes a node as a crash does: nothing it had pending is answered. */
  detach(transport: SimTransport): void {
    if (this.byId.get(transport.localId) !== transport) return;
    this.byId.delete(transport.localId);
    this.byAddress.delete(transport.address);
    this.trace(`${this.clock.nowMs()} net detach ${transport.localId}`);
  }

  /** Tells every live node that `id`'s connections were reset (in id order, so a run replays). */
  resetPeersOf(id: NodeId): void {
    this.trace(`${this.clock.nowMs()} net reset ${id}`);
    for (const other of [...this.byId.keys()].sort()) this.byId.get(other)?.peerReset(id);
  }

  /** Drops the connections between two live nodes: each side's requests to the other fail as a reset connection does. */
  resetConnection(a: NodeId, b: NodeId): void {
    this.trace(`${this.clock.nowMs()} net reset ${a}<->${b}`);
    this.stats.resets++;
    this.byId.get(a)?.peerReset(b);
    this.byId.get(b)?.peerReset(a);
  }

  isAttached(id: NodeId): boolean {
    return this.byId.has(id);
  }

  /** Blocks traffic from every node in `from` to every node in `to` (and back unless oneWay). */
  partition(from: readonly NodeId[], to: readonly NodeId[], options: { oneWay?: boolean } = {}): void {
    for (const a of from) {
      for (const b of to) {
        if (a === b) continue;
        this.blocked.add(linkKey(a, b));
        if (!options.oneWay) this.blocked.add(linkKey(b, a));
      }
    }
    this.trace(`${this.clock.nowMs()} net partition ${from.join(',')} ${options.oneWay ? '->' : '<->'} ${to.join(',')}`);
  }

  heal(): void {
    this.blocked.clear();
    this.trace(`${this.clock.nowMs()} net heal`);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(linkKey(from, to));
  }

  /** Adds `extraMs` to every message a node sends or receives (a slow node or link); 0 clears it. */
  setSlow(id: NodeId, extraMs: number): void {
    if (extraMs > 0) this.slowMs.set(id, extraMs);
    else this.slowMs.delete(id);
    this.trace(`${this.clock.nowMs()} net slow ${id} ${extraMs}`);
  }

  /** Total faults injected so far (losses, duplicates, partition losses, reorders, slowed messages, connection resets). */
  faultsInjected(): number {
    const s = this.stats;
    return s.dropped + s.duplicated + s.partitioned + s.reordered + s.slowed + s.resets;
  }

  // ------------------------------------------------------------ internals for SimTransport

  allocateRequestId(): number {
    return this.nextRequestId++;
  }

  lookup(address: string): SimTransport | undefined {
    return this.byAddress.get(address);
  }

  /** Carries one envelope from `from` to the process `to`, applying the faults. */
  transmit(from: SimTransport, to: SimTransport, envelope: Envelope, label: string): void {
    const now = this.clock.nowMs();
    this.stats.sent++;
    if (this.isBlocked(from.localId, to.localId)) {
      this.stats.partitioned++;
      this.trace(`${now} net cut ${from.localId}>${to.localId} ${label}`);
      return;
    }
    if (this.faults.dropRate > 0 && this.random.float() < this.faults.dropRate) {
      this.stats.dropped++;
      this.trace(`${now} net drop ${from.localId}>${to.localId} ${label}`);
      return;
    }
    const copies = this.faults.duplicateRate > 0 && this.random.float() < this.faults.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = this.delayMs(from.localId, to.localId);
      const key = linkKey(from.localId, to.localId);
      const arrival = now + delay;
      if (arrival < (this.lastArrival.get(key) ?? -Infinity)) this.stats.reordered++;
      else this.lastArrival.set(key, arrival);
      // The copy is taken at send time, as bytes leave a socket then.
      const copy = structuredClone(envelope);
      this.clock.setTimer(delay, () => this.arrive(from, to, copy, label));
    }
  }

  private delayMs(from: NodeId, to: NodeId): number {
    const f = this.faults;
    const jitter = f.meanJitterMs > 0 ? -Math.log(1 - this.random.float()) * f.meanJitterMs : 0;
    let delay = Math.min(f.maxLatencyMs, f.minLatencyMs + jitter);
    const slow = (this.slowMs.get(from) ?? 0) + (this.slowMs.get(to) ?? 0);
    if (slow > 0) {
      this.stats.slowed++;
      delay += slow * (0.5 + this.random.float());
    }
    return Math.round(delay * 1000) / 1000;
  }

  private arrive(from: SimTransport, to: SimTransport, envelope: Envelope, label: string): void {
    const now = this.clock.nowMs();
    if (this.byId.get(to.localId) !== to || to.closed) {
      // The process that should receive it is gone: a crash loses what was on the wire.
      this.stats.refused++;
      this.trace(`${now} net lost ${from.localId}>${to.localId} ${label} (receiver gone)`);
      return;
    }
    this.stats.delivered++;
    this.trace(`${now} net deliver ${from.localId}>${to.localId} ${label}`);
    to.receive(from, envelope);
  }

  /** Rejects after one minimum latency: the remote host answered the connection attempt with a reset. */
  refuse(from: SimTransport, reject: (error: Error) => void, error: Error, label: string): void {
    this.stats.refused++;
    this.trace(`${this.clock.nowMs()} net refused ${from.localId} ${label}`);
    this.clock.setTimer(this.faults.minLatencyMs, () => {
      if (!from.closed) reject(error);
    });
  }
}

interface Pending {
  resolve(value: WireMessage | NodeId): void;
  reject(error: Error): void;
  timer: Timer;
  /** The node asked (undefined for identify, which asks an address). */
  to: NodeId | undefined;
}

export class SimTransport implements Transport {
  closed = false;
  private handler: MessageHandler | undefined;
  private readonly addresses = new Map<NodeId, string>();
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly network: SimNetwork,
    readonly localId: NodeId,
    readonly address: string,
  ) {}

  setAddress(node: NodeId, address: string): void {
    this.addresses.set(node, address);
  }

  setHandler(handler: MessageHandler): void {
    this.handler = handler;
  }

  /** The live process `to` at its known address, if it is the node we expect there. */
  private target(to: NodeId): SimTransport | undefined {
    if (to === this.localId) return this;
    const address = this.addresses.get(to);
    if (address === undefined) return undefined;
    const remote = this.network.lookup(address);
    return remote?.localId === to ? remote : undefined;
  }

  send(to: NodeId, message: WireMessage): void {
    if (this.closed) return;
    const remote = this.target(to);
    if (remote === undefined) {
      this.network.stats.refused++;
      return;
    }
    this.network.transmit(this, remote, { kind: 'msg', message }, String(message.type));
  }

  request(to: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    if (this.closed) return Promise.reject(new ClosedError(`The transport of ${this.localId} is closed`));
    return new Promise<WireMessage>((resolve, reject) => {
      const remote = this.target(to);
      const label = `req:${String(message.type)}`;
      if (remote === undefined) {
        const known = this.addresses.has(to);
        const error = new UnavailableError(
          known ? `Cannot reach node ${to}: nothing is running at ${this.addresses.get(to)}` : `Cannot reach node ${to}: its address is not known`,
          { answered: 0, required: 1 },
        );
        this.network.refuse(this, reject, error, label);
        return;
      }
      const id = this.track(timeoutMs, `Request ${String(message.type)} to ${to} got no reply within ${timeoutMs} ms`, resolve as (v: WireMessage | NodeId) => void, reject, to);
      this.network.transmit(this, remote, { kind: 'req', id, message }, label);
    });
  }

  identify(address: string, timeoutMs: number): Promise<NodeId> {
    if (this.closed) return Promise.reject(new ClosedError(`The transport of ${this.localId} is closed`));
    return new Promise<NodeId>((resolve, reject) => {
      const remote = this.network.lookup(address);
      if (remote === undefined) {
        this.network.refuse(this, reject, new UnavailableError(`Cannot reach ${address}: no node is running there`, { answered: 0, required: 1 }), 'identify');
        return;
      }
      const id = this.track(timeoutMs, `No node at ${address} answered within ${timeoutMs} ms`, resolve as (v: WireMessage | NodeId) => void, reject, undefined);
      this.network.transmit(this, remote, { kind: 'identify', id }, 'identify');
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.network.detach(this);
    for (const [id, p] of this.pending) {
      p.timer.cancel();
      p.reject(new ClosedError(`The transport of ${this.localId} closed with the request pending`));
      this.pending.delete(id);
    }
  }

  /**
   * A crash: the process is gone, so nothing pending is settled. With
   * `resetConnections` (a killed process, not a lost host) its peers' requests
   * to it fail at once instead of timing out.
   */
  crash(resetConnections = false): void {
    this.closed = true;
    this.network.detach(this);
    if (resetConnections) this.network.resetPeersOf(this.localId);
    for (const p of this.pending.values()) p.timer.cancel();
    this.pending.clear();
  }

  private track(timeoutMs: number, timeoutMessage: string, resolve: (v: WireMessage | NodeId) => void, reject: (e: Error) => void, to: NodeId | undefined): number {
    const id = this.network.allocateRequestId();
    const timer = this.network.clock.setTimer(timeoutMs, () => {
      if (this.pending.delete(id)) reject(new TimeoutError(timeoutMessage));
    });
    this.pending.set(id, { resolve, reject, timer, to });
    return id;
  }

  /**
   * The process `peer` died and its kernel reset the connections: what this
   * node asked it fails after one latency, as TCP reports it, with the error
   * a real connection gives (the request may have been applied), rather than
   * waiting for its timeout.
   */
  peerReset(peer: NodeId): void {
    for (const [id, p] of this.pending) {
      if (p.to !== peer) continue;
      this.network.clock.setTimer(this.network.faults.minLatencyMs, () =>
        this.settle(id, {
          error: new UnavailableError(`The connection to node ${peer} closed before it replied (the request may have been applied)`, { answered: 0, required: 1, maybeApplied: true }),
        }),
      );
    }
  }

  private settle(id: number, outcome: { value: WireMessage | NodeId } | { error: Error }): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // a duplicate or a reply after the timeout
    this.pending.delete(id);
    p.timer.cancel();
    if ('value' in outcome) p.resolve(outcome.value);
    else p.reject(outcome.error);
  }

  /** Called by the network when an envelope arrives at this (live) process. */
  receive(from: SimTransport, envelope: Envelope): void {
    const connection: Connection = { from };
    switch (envelope.kind) {
      case 'msg':
        this.handler?.onMessage(from.localId, envelope.message);
        return;
      case 'identify':
        this.network.transmit(this, from, { kind: 'ident-res', id: envelope.id, nodeId: this.localId }, 'identify-reply');
        return;
      case 'req':
        this.serve(connection, envelope.id, envelope.message);
        return;
      case 'res':
        this.settle(envelope.id, envelope.ok ? { value: envelope.message } : { error: errorFromWire(envelope.error) });
        return;
      case 'ident-res':
        this.settle(envelope.id, { value: envelope.nodeId });
        return;
    }
  }

  private serve(connection: Connection, id: number, message: WireMessage): void {
    const label = `res:${String(message.type)}`;
    const handler = this.handler;
    const reply = (envelope: Envelope): void => {
      if (!this.closed) this.network.transmit(this, connection.from, envelope, label);
    };
    if (handler === undefined) {
      reply({ kind: 'res', id, ok: false, error: errorToWire(new UnavailableError(`Node ${this.localId} has no handler installed yet`, { answered: 0, required: 1 })) });
      return;
    }
    let result: Promise<WireMessage>;
    try {
      result = handler.onRequest(connection.from.localId, message);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (value) => reply({ kind: 'res', id, ok: true, message: value }),
      (error: unknown) => reply({ kind: 'res', id, ok: false, error: errorToWire(error) }),
    );
  }
}
