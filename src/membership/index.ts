/** src/membership: gossip, failure detection and node states. Other subsystems import only this file. */
export { Membership, gossipSyn, gossipAck, gossipAck2 } from './membership.ts';
export { PhiAccrualDetector, type PhiOptions } from './phi.ts';
export { compareRings, ringHash, type MemberEntry, type Digest } from './entry.ts';
export * from './constants.ts';
export type { Liveness, MemberStatus, MemberView, MembershipEvent, MembershipListener, MembershipOptions, RingState } from './types.ts';
export { memberStatuses } from './types.ts';
export { RingClaimant, type ClaimantOptions, type ClaimantRingOptions } from './claimant.ts';
