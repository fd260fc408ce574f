/**
 * The simulation harness: N nodes in one process on one virtual clock, each
 * with its own environment (a killable view of the clock, a forked random
 * stream, its own crash-modelling MemoryFileSystem, a transport on the
 * simulated network, a logger into the trace). What a node *is* comes from
 * the factory, so membership-only nodes and full replicated nodes (coordinator
 * and storage on top) run in the same harness. Same seed ⇒ same run.
 */
import {
  InvalidArgumentError,
  MemoryFileSystem,
  MessageRouter,
  SeededRandom,
  VirtualClock,
  type CrashOptions,
  type Logger,
  type NodeId,
  type Random,
} from '../src/core/index.ts';
import { SimNetwork, type NetworkFaults, type SimTransport } from './network.ts';
import { NodeClock } from './node-clock.ts';
import { Trace, TraceLogger } from './trace.ts';

/** Everything a node gets from the harness when it (re)starts. */
export interface SimNodeContext {
  readonly id: NodeId;
  readonly address: string;
  /** 1 on first start, bumped on every restart. */
  readonly generation: number;
  readonly clock: NodeClock;
  readonly random: Random;
  /** Survives crashes as a disk does: only synced data and synced directory changes. */
  readonly fs: MemoryFileSystem;
  readonly log: Logger;
  readonly transport: SimTransport;
  /** Already installed as the transport's handler: register protocols on it. */
  readonly router: MessageRouter;
  /** Addresses of the cluster's seed nodes. */
  readonly seeds: readonly string[];
}

/** A running node. `stop` is a graceful shutdown; a crash never calls it. */
export interface SimNode {
  stop?(): void | Promise<void>;
}

export type SimNodeFactory<N extends SimNode> = (context: SimNodeContext) => N | Promise<N>;

export interface SimClusterOptions<N extends SimNode> {
  readonly seed: number;
  /** Node ids, or how many nodes to name n1…nN. */
  readonly nodes: number | readonly NodeId[];
  readonly factory: SimNodeFactory<N>;
  readonly faults?: Partial<NetworkFaults>;
  /** How many of the first nodes are seeds (default min(3, N)). */
  readonly seedCount?: number;
  /** Trace lines kept for failure reports (default 200). */
  readonly traceTail?: number;
}

interface Slot<N> {
  readonly id: NodeId;
  readonly address: string;
  readonly fs: MemoryFileSystem;
  generation: number;
  running: { node: N; clock: NodeClock; transport: SimTransport } | undefined;
}

export class SimCluster<N extends SimNode> {
  readonly clock = new VirtualClock();
  readonly trace: Trace;
  readonly network: SimNetwork;
  readonly random: SeededRandom;
  readonly seeds: readonly string[];
  private readonly slots = new Map<NodeId, Slot<N>>();
  private readonly factory: SimNodeFactory<N>;
  private readonly counts = { crashes: 0, restarts: 0, partitions: 0 };

  constructor(options: SimClusterOptions<N>) {
    const ids = typeof options.nodes === 'number' ? Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`) : [...options.nodes];
    if (ids.length === 0) throw new InvalidArgumentError('A simulated cluster needs at least one node');
    if (new Set(ids).size !== ids.length) throw new InvalidArgumentError('Simulated node ids must be distinct');
    this.trace = new Trace(options.traceTail ?? 200);
    this.random = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.clock, this.random.fork('network'), options.faults ?? {}, (line) => this.trace.record(line));
    this.factory = options.factory;
    for (const id of ids) this.slots.set(id, { id, address: `sim://${id}`, fs: new MemoryFileSystem(), generation: 0, running: undefined });
    this.seeds = ids.slice(0, options.seedCount ?? Math.min(3, ids.length)).map((id) => `sim://${id}`);
  }

  ids(): NodeId[] {
    return [...this.slots.keys()];
  }

  liveIds(): NodeId[] {
    return [...this.slots.values()].filter((s) => s.running !== undefined).map((s) => s.id);
  }

  isRunning(id: NodeId): boolean {
    return this.slot(id).running !== undefined;
  }

  node(id: NodeId): N | undefined {
    return this.slot(id).running?.node;
  }

  liveNodes(): Array<[NodeId, N]> {
    return [...this.slots.values()].flatMap((s) => (s.running === undefined ? [] : [[s.id, s.running.node] as [NodeId, N]]));
  }

  generation(id: NodeId): number {
    return this.slot(id).generation;
  }

  fs(id: NodeId): MemoryFileSystem {
    return this.slot(id).fs;
  }

  /** Starts (or restarts) a node with a new generation. */
  async start(id: NodeId): Promise<N> {
    const slot = this.slot(id);
    if (slot.running !== undefined) throw new InvalidArgumentError(`Node ${id} is already running`);
    slot.generation++;
    if (slot.generation > 1) this.counts.restarts++;
    const clock = new NodeClock(this.clock);
    const transport = this.network.attach(id, slot.address);
    const router = new MessageRouter();
    transport.setHandler(router);
    const log = new TraceLogger(this.trace, this.clock, { node: id });
    this.trace.record(`${this.clock.nowMs()} sim start ${id} generation=${slot.generation}`);
    const node = await this.factory({
      id,
      address: slot.address,
      generation: slot.generation,
      clock,
      random: this.random.fork(`${id}#${slot.generation}`),
      fs: slot.fs,
      log,
      transport,
      router,
      seeds: this.seeds,
    });
    slot.running = { node, clock, transport };
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.slots.keys()) if (this.slot(id).running === undefined) await this.start(id);
  }

  /**
   * Power loss: timers die, the network forgets the node, unsynced disk state
   * is lost. `resetConnections`: the process was killed on a host that stays
   * up, so its peers see their connections to it reset.
   */
  crash(id: NodeId, options: CrashOptions & { resetConnections?: boolean } = {}): void {
    const slot = this.slot(id);
    const running = slot.running;
    if (running === undefined) throw new InvalidArgumentError(`Node ${id} is not running, so it cannot crash`);
    running.clock.kill();
    running.transport.crash(options.resetConnections === true);
    slot.fs.crash(this.random, options);
    slot.running = undefined;
    this.counts.crashes++;
    this.trace.record(`${this.clock.nowMs()} sim crash ${id}`);
  }

  /** Graceful shutdown: the node's own stop runs, then its timers and transport go. */
  async stop(id: NodeId): Promise<void> {
    const slot = this.slot(id);
    const running = slot.running;
    if (running === undefined) return;
    await running.node.stop?.();
    running.clock.kill();
    await running.transport.close();
    slot.running = undefined;
    this.trace.record(`${this.clock.nowMs()} sim stop ${id}`);
  }

  restart(id: NodeId): Promise<N> {
    return this.start(id);
  }

  partition(from: readonly NodeId[], to: readonly NodeId[], options: { oneWay?: boolean } = {}): void {
    this.counts.partitions++;
    this.network.partition(from, to, options);
  }

  heal(): void {
    this.network.heal();
  }

  setSlow(id: NodeId, extraMs: number): void {
    this.network.setSlow(id, extraMs);
  }

  /** Runs `ms` of virtual time. */
  run(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  /**
   * Runs until `done()` holds, checking every `checkEveryMs` of virtual time
   * (a check may be costly), for at most `limitMs`. Returns the virtual time
   * it took, or undefined when the limit passed first.
   */
  async runUntil(done: () => boolean, limitMs: number, checkEveryMs = 100): Promise<number | undefined> {
    const start = this.clock.nowMs();
    for (;;) {
      if (done()) return this.clock.nowMs() - start;
      if (this.clock.nowMs() - start >= limitMs) return undefined;
      await this.clock.advance(Math.min(checkEveryMs, limitMs - (this.clock.nowMs() - start)));
    }
  }

  faultsInjected(): number {
    return this.network.faultsInjected() + this.counts.crashes + this.counts.restarts + this.counts.partitions;
  }

  faultCounts(): Record<string, number> {
    return { ...this.network.stats, ...this.counts };
  }

  traceHash(): string {
    return this.trace.hash();
  }

  /** Stops every running node's timers and transport (end of a run). */
  shutdown(): void {
    for (const slot of this.slots.values()) {
      if (slot.running === undefined) continue;
      slot.running.clock.kill();
      slot.running.transport.crash();
      slot.running = undefined;
    }
  }

  private slot(id: NodeId): Slot<N> {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new InvalidArgumentError(`No simulated node is named ${id}`);
    return slot;
  }
}
