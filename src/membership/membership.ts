/**
 * Gossip membership: a pure state machine over the injected clock, random,
 * transport and logger. Every round a node bumps its heartbeat and runs a
 * Cassandra-style three-way exchange with a random live peer (plus, now and
 * then, an unreachable node and a seed):
 *
 *   A → B  gossip.syn  { digests: [id, generation, version]…, ring digest }
 *   B → A  gossip.ack  { entries B has newer, want: ids A has newer, ring?, wantRing }
 *   A → B  gossip.ack2 { entries B wanted, ring? }
 *
 * so only entries that are newer travel. All three are one-way messages: a
 * lost one costs one round, never a stuck request. docs/membership.md has the
 * format and the failure-detection rules.
 */
import {
  InvalidArgumentError,
  ProtocolError,
  type Clock,
  type Logger,
  type MessageHandler,
  type NodeId,
  type Random,
  type Timer,
  type Transport,
  type WireMessage,
} from '../core/index.ts';
import {
  defaultFanout,
  defaultGossipIntervalMs,
  defaultPhiThreshold,
  detectorWindowSize,
  gossipProtocolVersion,
  maxDigestsPerMessage,
  maxEntriesPerMessage,
  maxExtraAddresses,
  maxFieldChars,
  maxMembers,
  maxRingStateBytes,
  seedIdentifyTimeoutMs,
  suspicionFreshIntervals,
} from './constants.ts';
import {
  compareRings,
  compareVersions,
  digestOf,
  parseDigests,
  parseEntry,
  parseRingDigest,
  parseRingState,
  ringHash,
  type Digest,
  type MemberEntry,
} from './entry.ts';
import { PhiAccrualDetector } from './phi.ts';
import type { Liveness, MemberStatus, MemberView, MembershipEvent, MembershipListener, MembershipOptions, RingState } from './types.ts';

/** Message types, all under the "gossip" route prefix. */
export const gossipSyn = 'gossip.syn';
export const gossipAck = 'gossip.ack';
export const gossipAck2 = 'gossip.ack2';

interface Peer {
  entry: MemberEntry;
  detector: PhiAccrualDetector;
  liveness: Liveness;
  /** Local monotonic time the entry last advanced. */
  updatedMs: number;
}

function checkField(value: string, what: string): void {
  if (value.length === 0 || value.length > maxFieldChars) {
    throw new InvalidArgumentError(`The ${what} must be 1 to ${maxFieldChars} characters, got ${value.length}`);
  }
}

export class Membership implements MessageHandler {
  readonly localId: NodeId;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly fanout: number;
  private readonly phiThreshold: number;

  private self: MemberEntry;
  private readonly peers = new Map<NodeId, Peer>();
  private ring: RingState;
  private readonly listeners = new Set<MembershipListener>();
  private readonly unresolvedSeeds = new Set<string>();
  private readonly resolvingSeeds = new Set<string>();
  private readonly seedIds = new Set<NodeId>();
  private timer: Timer | undefined;
  private running = false;
  private droppedForCapacity = 0;

  constructor(options: MembershipOptions) {
    this.clock = options.clock;
    this.random = options.random;
    this.transport = options.transport;
    this.log = options.log.child({ component: 'membership' });
    this.localId = options.transport.localId;
    this.intervalMs = options.gossipIntervalMs ?? defaultGossipIntervalMs;
    this.fanout = options.fanout ?? defaultFanout;
    this.phiThreshold = options.phiThreshold ?? defaultPhiThreshold;
    if (!(this.intervalMs > 0)) throw new InvalidArgumentError(`gossipIntervalMs must be positive, got ${this.intervalMs}`);
    if (!Number.isInteger(this.fanout) || this.fanout < 1) throw new InvalidArgumentError(`fanout must be a positive integer, got ${this.fanout}`);
    if (!Number.isSafeInteger(options.generation) || options.generation < 0) {
      throw new InvalidArgumentError(`generation must be a non-negative integer, got ${options.generation}`);
    }
    checkField(this.localId, 'node id');
    checkField(options.address, 'address');
    const addresses = Object.entries(options.addresses ?? {});
    if (addresses.length > maxExtraAddresses) throw new InvalidArgumentError(`A node has at most ${maxExtraAddresses} extra addresses, got ${addresses.length}`);
    for (const [name, value] of addresses) {
      checkField(name, 'address name');
      checkField(value, `address "${name}"`);
    }
    const dc = options.dc ?? 'dc1';
    const rack = options.rack ?? 'rack1';
    checkField(dc, 'dc');
    checkField(rack, 'rack');
    this.self = {
      id: this.localId,
      generation: options.generation,
      version: 0,
      address: options.address,
      addresses: addresses.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      dc,
      rack,
      status: options.status ?? 'joining',
      suspects: [],
    };
    for (const seed of options.seeds ?? []) if (seed !== options.address) this.unresolvedSeeds.add(seed);
    const empty = ringHash(null);
    this.ring = { version: 0, proposer: '', hash: empty.hash, data: null };
  }

  // ------------------------------------------------------------ lifecycle

  start(): void {
    if (this.running) return;
    this.running = true;
    this.resolveSeeds();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  // ------------------------------------------------------------ queries

  get gossipIntervalMs(): number {
    return this.intervalMs;
  }

  members(): MemberView[] {
    const now = this.clock.nowMs();
    const views = [this.viewOfSelf()];
    for (const peer of this.peers.values()) views.push(this.viewOf(peer, now));
    return views.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  member(id: NodeId): MemberView | undefined {
    if (id === this.localId) return this.viewOfSelf();
    const peer = this.peers.get(id);
    return peer === undefined ? undefined : this.viewOf(peer, this.clock.nowMs());
  }

  isUp(id: NodeId): boolean {
    if (id === this.localId) return this.running;
    return this.peers.get(id)?.liveness === 'up';
  }

  ringState(): RingState {
    return this.ring;
  }

  /** Subscribes to membership and ring changes; returns the unsubscribe function. */
  onChange(listener: MembershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Peers whose entries were dropped because the table was full (maxMembers). */
  droppedMembers(): number {
    return this.droppedForCapacity;
  }

  // ------------------------------------------------------------ local changes

  setStatus(status: MemberStatus): void {
    if (status === this.self.status) return;
    const previous = this.viewOfSelf();
    this.self = { ...this.self, status, version: this.self.version + 1 };
    this.log.info('status changed', { from: previous.status, to: status });
    this.emit({ type: 'member', member: this.viewOfSelf(), previous });
  }

  /** Proposes a new ring state, one version above the current one, and gossips it. */
  proposeRing(data: unknown): RingState {
    const { hash, bytes } = ringHash(data);
    if (bytes > maxRingStateBytes) throw new InvalidArgumentError(`Cannot gossip a ring state of ${bytes} bytes: the limit is ${maxRingStateBytes}`);
    const previous = this.ring;
    this.ring = { version: previous.version + 1, proposer: this.localId, hash, data };
    this.log.info('ring proposed', { version: this.ring.version });
    this.emit({ type: 'ring', ring: this.ring, previous });
    return this.ring;
  }

  // ------------------------------------------------------------ the round

  private schedule(): void {
    if (!this.running) return;
    // ±10% jitter keeps nodes started together from gossiping in lockstep.
    const delay = this.intervalMs * (0.9 + 0.2 * this.random.float());
    this.timer = this.clock.setTimer(delay, () => {
      this.tick();
      this.schedule();
    });
  }

  /** One gossip round; public so tests can drive rounds without timers. */
  tick(): void {
    if (!this.running) return;
    this.evaluate();
    this.self = { ...this.self, version: this.self.version + 1 };
    this.resolveSeeds();
    for (const target of this.chooseTargets()) this.sendSyn(target);
  }

  private chooseTargets(): NodeId[] {
    const live: NodeId[] = [];
    const unreachable: NodeId[] = [];
    for (const id of [...this.peers.keys()].sort()) {
      const peer = this.peers.get(id) as Peer;
      if (peer.entry.status === 'left') continue;
      (peer.liveness === 'up' ? live : unreachable).push(id);
    }
    const targets = this.pick(live, this.fanout);
    // Cassandra's rules: probe an unreachable node with probability
    // unreachable/(live+1), so healed partitions and restarts are noticed,
    // and talk to a seed now and then so that separately started groups merge.
    if (unreachable.length > 0 && this.random.float() < unreachable.length / (live.length + 1)) {
      targets.push(...this.pick(unreachable, 1));
    }
    const seeds = [...this.seedIds].filter((id) => id !== this.localId && !targets.includes(id)).sort();
    if (seeds.length > 0 && (live.length === 0 || this.random.float() < seeds.length / (live.length + unreachable.length + 1))) {
      targets.push(...this.pick(seeds, 1));
    }
    return targets;
  }

  /** `count` distinct items drawn at random (all of them, in random order, when fewer). */
  private pick<T>(from: readonly T[], count: number): T[] {
    const pool = [...from];
    const out: T[] = [];
    while (out.length < count && pool.length > 0) {
      const i = this.random.int(pool.length);
      out.push(pool[i] as T);
      pool.splice(i, 1);
    }
    return out;
  }

  private resolveSeeds(): void {
    for (const address of this.unresolvedSeeds) {
      if (this.resolvingSeeds.has(address)) continue;
      this.resolvingSeeds.add(address);
      this.transport.identify(address, seedIdentifyTimeoutMs).then(
        (id) => {
          this.resolvingSeeds.delete(address);
          if (!this.running) return;
          this.unresolvedSeeds.delete(address);
          if (id === this.localId) return;
          this.seedIds.add(id);
          this.transport.setAddress(id, address);
          this.sendSyn(id);
        },
        (error: unknown) => {
          this.resolvingSeeds.delete(address);
          if (this.running) this.log.debug('seed not reachable yet', { seed: address, error });
        },
      );
    }
  }

  // ------------------------------------------------------------ failure detection

  /**
   * Recomputes every peer's liveness. A peer is suspected when its phi passes
   * the threshold; it is down when it is suspected here and at least one
   * other node that we believe up gossiped a fresh suspicion of the same
   * generation, or when no such other node exists (a two-node cluster, or we
   * are cut off from everyone, where no confirmation can ever come).
   */
  private evaluate(): void {
    const now = this.clock.nowMs();
    const suspected = new Set<NodeId>();
    for (const [id, peer] of this.peers) if (peer.detector.phi(now) > this.phiThreshold) suspected.add(id);
    const freshMs = suspicionFreshIntervals * this.intervalMs;
    for (const [id, peer] of this.peers) {
      let liveness: Liveness = 'up';
      if (suspected.has(id)) liveness = this.confirmed(id, peer.entry.generation, suspected, now, freshMs) ? 'down' : 'suspect';
      this.setLiveness(peer, liveness, now);
    }
    const suspects = [...suspected].sort().map((id) => [id, (this.peers.get(id) as Peer).entry.generation] as const);
    this.self = { ...this.self, suspects };
  }

  private confirmed(target: NodeId, generation: number, suspected: Set<NodeId>, now: number, freshMs: number): boolean {
    let confirmers = 0;
    for (const [id, peer] of this.peers) {
      if (id === target || suspected.has(id) || peer.entry.status === 'left') continue;
      confirmers++;
      if (now - peer.updatedMs > freshMs) continue;
      if (peer.entry.suspects.some(([s, g]) => s === target && g === generation)) return true;
    }
    return confirmers === 0;
  }

  private setLiveness(peer: Peer, liveness: Liveness, now: number): void {
    if (peer.liveness === liveness) return;
    const previous = this.viewOf(peer, now);
    peer.liveness = liveness;
    const level = liveness === 'up' ? 'info' : 'warn';
    this.log[level](`peer ${liveness}`, { peer: peer.entry.id, generation: peer.entry.generation, phi: Number(previous.phi.toFixed(2)) });
    this.emit({ type: 'member', member: this.viewOf(peer, now), previous });
  }

  // ------------------------------------------------------------ messages

  onMessage(from: NodeId, message: WireMessage): void {
    if (!this.running) return;
    switch (message.type) {
      case gossipSyn: return this.onSyn(from, message);
      case gossipAck: return this.onAck(from, message);
      case gossipAck2: return this.onAck2(from, message);
      default:
        this.log.debug('unknown gossip message dropped', { from, type: message.type });
    }
  }

  onRequest(_from: NodeId, message: WireMessage): Promise<WireMessage> {
    return Promise.reject(new ProtocolError(`Membership answers no requests, got "${message.type}"`));
  }

  private sendSyn(to: NodeId): void {
    const digests: Digest[] = [digestOf(this.self)];
    for (const peer of this.peers.values()) digests.push(digestOf(peer.entry));
    // The address lets a receiver that has never heard of us route its ack.
    this.transport.send(to, { type: gossipSyn, v: gossipProtocolVersion, address: this.self.address, digests, ring: this.ringDigest() });
  }

  private onSyn(from: NodeId, message: WireMessage): void {
    if (message.v !== gossipProtocolVersion) {
      this.log.warn('gossip syn of another protocol version dropped', { from, version: message.v, ours: gossipProtocolVersion });
      return;
    }
    const digests = parseDigests(message.digests, maxDigestsPerMessage);
    const ring = parseRingDigest(message.ring);
    if (typeof digests === 'string' || typeof ring === 'string') {
      this.log.warn('malformed gossip syn dropped', { from, reason: typeof digests === 'string' ? digests : ring });
      return;
    }
    if (!this.peers.has(from) && typeof message.address === 'string' && message.address.length <= maxFieldChars) {
      this.transport.setAddress(from, message.address);
    }
    const entries: MemberEntry[] = [];
    const want: NodeId[] = [];
    const mentioned = new Set<NodeId>();
    for (const [id, generation, version] of digests) {
      mentioned.add(id);
      const local = this.entryOf(id);
      const order = local === undefined ? -1 : compareVersions(local.generation, local.version, generation, version);
      if (order < 0) want.push(id);
      else if (order > 0 && local !== undefined) entries.push(local);
    }
    for (const entry of this.allEntries()) if (!mentioned.has(entry.id)) entries.push(entry);
    const order = compareRings(this.ring, ring);
    this.transport.send(from, {
      type: gossipAck,
      entries: this.bounded(entries),
      want: want.slice(0, maxEntriesPerMessage),
      ...(order > 0 ? { ring: this.ring } : {}),
      wantRing: order < 0,
    });
  }

  private onAck(from: NodeId, message: WireMessage): void {
    this.mergeEntries(from, message.entries);
    if (message.ring !== undefined) this.mergeRing(from, message.ring);
    const wanted = Array.isArray(message.want) ? (message.want as unknown[]).slice(0, maxEntriesPerMessage) : [];
    const entries: MemberEntry[] = [];
    for (const id of wanted) {
      if (typeof id !== 'string') continue;
      const entry = this.entryOf(id);
      if (entry !== undefined) entries.push(entry);
    }
    const sendRing = message.wantRing === true && this.ring.version > 0;
    if (entries.length === 0 && !sendRing) return;
    this.transport.send(from, { type: gossipAck2, entries, ...(sendRing ? { ring: this.ring } : {}) });
  }

  private onAck2(from: NodeId, message: WireMessage): void {
    this.mergeEntries(from, message.entries);
    if (message.ring !== undefined) this.mergeRing(from, message.ring);
  }

  private bounded(entries: MemberEntry[]): MemberEntry[] {
    if (entries.length <= maxEntriesPerMessage) return entries;
    // A random subset, so that no entry starves when the table outgrows one message.
    return this.pick(entries, maxEntriesPerMessage);
  }

  // ------------------------------------------------------------ merging

  private mergeEntries(from: NodeId, raw: unknown): void {
    if (!Array.isArray(raw)) {
      this.log.warn('malformed gossip entries dropped', { from });
      return;
    }
    for (const item of (raw as unknown[]).slice(0, maxEntriesPerMessage)) {
      const entry = parseEntry(item);
      if (typeof entry === 'string') {
        this.log.warn('malformed gossip entry dropped', { from, reason: entry });
        continue;
      }
      this.mergeEntry(entry);
    }
  }

  private mergeEntry(entry: MemberEntry): void {
    if (entry.id === this.localId) return this.mergeSelf(entry);
    const now = this.clock.nowMs();
    const peer = this.peers.get(entry.id);
    if (peer === undefined) {
      if (this.peers.size + 1 >= maxMembers) {
        this.droppedForCapacity++;
        this.log.warn('member table full: entry dropped', { peer: entry.id, limit: maxMembers });
        return;
      }
      const fresh: Peer = { entry, detector: this.newDetector(), liveness: 'up', updatedMs: now };
      fresh.detector.heartbeat(now);
      this.peers.set(entry.id, fresh);
      this.transport.setAddress(entry.id, entry.address);
      this.log.info('peer discovered', { peer: entry.id, generation: entry.generation, address: entry.address });
      this.emit({ type: 'member', member: this.viewOf(fresh, now), previous: undefined });
      return;
    }
    const old = peer.entry;
    if (compareVersions(entry.generation, entry.version, old.generation, old.version) <= 0) return;
    const previous = this.viewOf(peer, now);
    if (entry.generation > old.generation) {
      // A restart: its old inter-arrival history says nothing about the new process.
      peer.detector = this.newDetector();
      this.log.info('peer restarted', { peer: entry.id, generation: entry.generation });
    }
    peer.detector.heartbeat(now);
    peer.entry = entry;
    peer.updatedMs = now;
    if (entry.address !== old.address) this.transport.setAddress(entry.id, entry.address);
    const changed =
      entry.generation !== old.generation ||
      entry.status !== old.status ||
      entry.address !== old.address ||
      entry.dc !== old.dc ||
      entry.rack !== old.rack ||
      JSON.stringify(entry.addresses) !== JSON.stringify(old.addresses);
    if (peer.liveness !== 'up') {
      peer.liveness = 'up';
      this.log.info('peer up', { peer: entry.id, generation: entry.generation });
      this.emit({ type: 'member', member: this.viewOf(peer, now), previous });
    } else if (changed) {
      this.emit({ type: 'member', member: this.viewOf(peer, now), previous });
    }
  }

  /** Someone holds a newer entry for us than we do: another process with our id, or we went back in time. */
  private mergeSelf(entry: MemberEntry): void {
    if (compareVersions(entry.generation, entry.version, this.self.generation, this.self.version) <= 0) return;
    this.log.warn('gossip holds a newer entry for this node: moving past it', {
      ours: [this.self.generation, this.self.version],
      theirs: [entry.generation, entry.version],
    });
    this.self =
      entry.generation > this.self.generation
        ? { ...this.self, generation: entry.generation + 1, version: 0 }
        : { ...this.self, version: entry.version + 1 };
  }

  private mergeRing(from: NodeId, raw: unknown): void {
    const ring = parseRingState(raw);
    if (typeof ring === 'string') {
      this.log.warn('malformed ring state dropped', { from, reason: ring });
      return;
    }
    if (compareRings(ring, this.ring) <= 0) return;
    const previous = this.ring;
    this.ring = ring;
    this.log.info('ring adopted', { version: ring.version, proposer: ring.proposer });
    this.emit({ type: 'ring', ring, previous });
  }

  // ------------------------------------------------------------ helpers

  private newDetector(): PhiAccrualDetector {
    return new PhiAccrualDetector({
      minMeanMs: this.intervalMs,
      maxMeanMs: 4 * this.intervalMs,
      maxSampleMs: 8 * this.intervalMs,
      windowSize: detectorWindowSize,
    });
  }

  private entryOf(id: NodeId): MemberEntry | undefined {
    return id === this.localId ? this.self : this.peers.get(id)?.entry;
  }

  private allEntries(): MemberEntry[] {
    return [this.self, ...[...this.peers.values()].map((p) => p.entry)];
  }

  private ringDigest(): { version: number; proposer: NodeId; hash: number } {
    return { version: this.ring.version, proposer: this.ring.proposer, hash: this.ring.hash };
  }

  private viewOfSelf(): MemberView {
    return this.toView(this.self, 'up', 0, true);
  }

  private viewOf(peer: Peer, now: number): MemberView {
    return this.toView(peer.entry, peer.liveness, peer.detector.phi(now), false);
  }

  private toView(entry: MemberEntry, liveness: Liveness, phi: number, self: boolean): MemberView {
    return {
      id: entry.id,
      address: entry.address,
      addresses: Object.fromEntries(entry.addresses),
      dc: entry.dc,
      rack: entry.rack,
      status: entry.status,
      generation: entry.generation,
      heartbeat: entry.version,
      liveness,
      self,
      phi,
    };
  }

  private emit(event: MembershipEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not stop gossip.
        this.log.error('membership listener threw', { error });
      }
    }
  }
}
