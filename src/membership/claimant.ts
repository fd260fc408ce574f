/**
 * The claimant: one node, chosen deterministically from what gossip says,
 * turns membership changes into ring changes (Riak's claimant). It is the
 * lowest id among the members this node sees up with status 'normal' (or
 * 'joining' when none is normal yet). When it sees that the set of ring
 * members (status 'joining' or 'normal', up or down: down is temporary and
 * does not change ownership) differs from the ring's nodes, it computes the
 * next ring with src/ring and proposes it through gossip.
 *
 * Two nodes may both believe they are the claimant while views disagree;
 * their proposals then carry the same version and gossip keeps the one with
 * the higher proposer id. The loser's change is not lost: whoever is claimant
 * once views agree proposes again from the winning ring.
 */
import type { Clock, Logger, NodeId, Timer } from '../core/index.ts';
import { Ring, type NodeDescriptor, type RingOptions } from '../ring/index.ts';
import type { Membership } from './membership.ts';
import type { MemberView } from './types.ts';

/** Ring parameters used when the claimant creates the first ring. */
export type ClaimantRingOptions = Omit<RingOptions, 'nodes'>;

export interface ClaimantOptions {
  readonly membership: Membership;
  readonly clock: Clock;
  readonly log: Logger;
  readonly ring?: ClaimantRingOptions;
  /**
   * How long the claimant waits after its start before it proposes, so that
   * a restarted node first learns the cluster's ring from gossip instead of
   * proposing a fresh one over it. Default: 5 gossip intervals.
   */
  readonly warmupMs?: number;
  /** Changes arriving within this delay are folded into one proposal. Default: one gossip interval. */
  readonly settleMs?: number;
}

function inRing(member: MemberView): boolean {
  return member.status === 'joining' || member.status === 'normal';
}

function sameNodes(a: readonly NodeDescriptor[], b: readonly NodeDescriptor[]): boolean {
  return a.length === b.length && a.every((n, i) => n.id === b[i]?.id && n.dc === b[i]?.dc && n.rack === b[i]?.rack);
}

export class RingClaimant {
  private readonly membership: Membership;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly ringOptions: ClaimantRingOptions;
  private readonly settleMs: number;
  private readonly readyAtMs: number;
  private decoded: { version: number; proposer: NodeId; hash: number; ring: Ring | undefined } | undefined;
  private timer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;
  proposals = 0;

  constructor(options: ClaimantOptions) {
    this.membership = options.membership;
    this.clock = options.clock;
    this.log = options.log.child({ component: 'claimant' });
    this.ringOptions = options.ring ?? {};
    this.settleMs = options.settleMs ?? this.membership.gossipIntervalMs;
    this.readyAtMs = this.clock.nowMs() + (options.warmupMs ?? 5 * this.membership.gossipIntervalMs);
  }

  start(): void {
    if (this.unsubscribe !== undefined) return;
    this.unsubscribe = this.membership.onChange(() => this.schedule());
    this.schedule();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** The current ring decoded, or undefined while there is none (or it does not parse). */
  ring(): Ring | undefined {
    const state = this.membership.ringState();
    const cached = this.decoded;
    if (cached !== undefined && cached.version === state.version && cached.proposer === state.proposer && cached.hash === state.hash) return cached.ring;
    let ring: Ring | undefined;
    if (state.version > 0) {
      try {
        ring = Ring.fromState(state.data as Parameters<typeof Ring.fromState>[0]);
      } catch (error) {
        this.log.error('gossiped ring state does not load', { version: state.version, proposer: state.proposer, error });
      }
    }
    this.decoded = { version: state.version, proposer: state.proposer, hash: state.hash, ring };
    return ring;
  }

  /** The node this node believes is the claimant now. */
  claimant(): NodeId | undefined {
    const up = this.membership.members().filter((m) => m.liveness === 'up');
    const normal = up.filter((m) => m.status === 'normal');
    const pool = normal.length > 0 ? normal : up.filter((m) => m.status === 'joining');
    return pool.map((m) => m.id).sort()[0];
  }

  private schedule(): void {
    if (this.unsubscribe === undefined || this.timer !== undefined) return;
    const delay = Math.max(this.settleMs, this.readyAtMs - this.clock.nowMs());
    this.timer = this.clock.setTimer(delay, () => {
      this.timer = undefined;
      this.reconcile();
    });
  }

  /** Proposes the next ring when this node is the claimant and the ring's members are out of date. */
  reconcile(): boolean {
    if (this.claimant() !== this.membership.localId) return false;
    const target: NodeDescriptor[] = this.membership
      .members()
      .filter(inRing)
      .map((m) => ({ id: m.id, dc: m.dc, rack: m.rack }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (target.length === 0) return false;
    const current = this.ring();
    if (current !== undefined && sameNodes(current.members(), target)) return false;
    const next = current === undefined ? Ring.create({ ...this.ringOptions, nodes: target }) : current.withMembers(target);
    this.membership.proposeRing(next.toState());
    this.proposals++;
    this.log.info('claimant proposed a ring', { epoch: next.epoch, nodes: target.length, layout: next.version });
    return true;
  }
}
