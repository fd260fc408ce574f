/**
 * A node that runs membership only: the factory for the membership scenario,
 * and a building block for richer simulated nodes (register further protocols
 * on `context.router`).
 */
import { Membership, RingClaimant, type ClaimantRingOptions, type MembershipOptions, type MemberStatus } from '../src/membership/index.ts';
import type { SimNode, SimNodeContext } from './cluster.ts';

export interface MembershipNodeOptions extends Partial<Pick<MembershipOptions, 'gossipIntervalMs' | 'fanout' | 'phiThreshold'>> {
  readonly status?: MemberStatus;
  /** dc and rack of each node; default one dc, racks r1…r3 round-robin. */
  readonly topology?: (id: string) => { dc: string; rack: string };
  /** Ring parameters for the claimant, or false to run without one (the ring stays opaque). */
  readonly claimant?: ClaimantRingOptions | false;
}

export class MembershipNode implements SimNode {
  readonly membership: Membership;
  readonly claimant: RingClaimant | undefined;

  constructor(context: SimNodeContext, options: MembershipNodeOptions = {}) {
    const where = options.topology?.(context.id) ?? { dc: 'dc1', rack: `r${(Number(context.id.replace(/\D/g, '')) % 3) + 1}` };
    this.membership = new Membership({
      clock: context.clock,
      random: context.random.fork('membership'),
      transport: context.transport,
      log: context.log,
      generation: context.generation,
      address: context.address,
      addresses: { resp: `${context.address}/resp`, http: `${context.address}/http` },
      dc: where.dc,
      rack: where.rack,
      status: options.status ?? 'normal',
      seeds: context.seeds,
      ...(options.gossipIntervalMs !== undefined ? { gossipIntervalMs: options.gossipIntervalMs } : {}),
      ...(options.fanout !== undefined ? { fanout: options.fanout } : {}),
      ...(options.phiThreshold !== undefined ? { phiThreshold: options.phiThreshold } : {}),
    });
    context.router.register('gossip', this.membership);
    this.membership.start();
    const ring = options.claimant ?? {};
    this.claimant = ring === false ? undefined : new RingClaimant({ membership: this.membership, clock: context.clock, log: context.log, ring });
    this.claimant?.start();
  }

  stop(): void {
    this.claimant?.stop();
    this.membership.stop();
  }
}
