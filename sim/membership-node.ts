/**
 * A node that runs membership only: the factory for the membership scenario,
 * and a building block for richer simulated nodes (register further protocols
 * on `context.router`).
 */
import { Membership, type MembershipOptions, type MemberStatus } from '../src/membership/index.ts';
import type { SimNode, SimNodeContext } from './cluster.ts';

export interface MembershipNodeOptions extends Partial<Pick<MembershipOptions, 'gossipIntervalMs' | 'fanout' | 'phiThreshold'>> {
  readonly status?: MemberStatus;
  /** dc and rack of each node; default one dc, racks r1…r3 round-robin. */
  readonly topology?: (id: string) => { dc: string; rack: string };
}

export class MembershipNode implements SimNode {
  readonly membership: Membership;

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
  }

  stop(): void {
    this.membership.stop();
  }
}
