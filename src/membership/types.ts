/** Public types of the membership subsystem. */
import type { Clock, Logger, NodeId, Random, Transport } from '../core/index.ts';

/** Ownership status, changed only explicitly (join / decommission). */
export type MemberStatus = 'joining' | 'normal' | 'leaving' | 'left';
/** Liveness as this node sees it; temporary, never changes ownership. */
export type Liveness = 'up' | 'suspect' | 'down';

export const memberStatuses: readonly MemberStatus[] = ['joining', 'normal', 'leaving', 'left'];

/**
 * The cluster-wide ring, opaque to membership. The highest `version` wins;
 * equal versions are ordered by `proposer`, then by `hash` (of the encoded
 * data), so every node settles on the same state whatever the arrival order.
 */
export interface RingState {
  readonly version: number;
  readonly proposer: NodeId;
  /** fnv1a32 of the msgpack encoding of `data`. */
  readonly hash: number;
  readonly data: unknown;
}

export interface MemberView {
  readonly id: NodeId;
  readonly address: string;
  /** Extra named addresses ("resp", "http", …), opaque to membership. */
  readonly addresses: Readonly<Record<string, string>>;
  readonly dc: string;
  readonly rack: string;
  readonly status: MemberStatus;
  readonly generation: number;
  readonly heartbeat: number;
  readonly liveness: Liveness;
  /** True for the node this view was taken on. */
  readonly self: boolean;
  /** Current phi of the failure detector (0 for self). */
  readonly phi: number;
}

export type MembershipEvent =
  | { readonly type: 'member'; readonly member: MemberView; readonly previous: MemberView | undefined }
  | { readonly type: 'ring'; readonly ring: RingState; readonly previous: RingState };

export type MembershipListener = (event: MembershipEvent) => void;

export interface MembershipOptions {
  readonly clock: Clock;
  readonly random: Random;
  readonly transport: Transport;
  readonly log: Logger;
  /** Bumped on every restart (e.g. wall-clock ms at start, or a persisted counter). */
  readonly generation: number;
  /** Inter-node address other nodes reach this node at. */
  readonly address: string;
  readonly addresses?: Readonly<Record<string, string>>;
  readonly dc?: string;
  readonly rack?: string;
  /** Initial status; default 'joining'. */
  readonly status?: MemberStatus;
  /** Addresses of seed nodes contacted at start-up. */
  readonly seeds?: readonly string[];
  readonly gossipIntervalMs?: number;
  readonly fanout?: number;
  readonly phiThreshold?: number;
}
