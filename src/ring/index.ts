/** src/ring: partitions, claims, placement and ownership diffs. Other subsystems import only this file. */
export { Ring, type RingOptions, type RingState, type Strategy, type PositionRange, type SloppyReplica } from './ring.ts';
export { type PreferenceList } from './placement.ts';
export { diffOwnership, rangeSize, type OwnershipChange, type Transfer } from './diff.ts';
export { keySlot, hashedRange } from './keyspace.ts';
export { type NodeDescriptor, type Replication } from './topology.ts';
export {
  redisSlotCount,
  defaultPartitionCount,
  defaultTokensPerNode,
  maxTokensPerNode,
  maxRingNodes,
  maxReplicationFactor,
  maxFallbackNodes,
  ringStateFormat,
} from './constants.ts';
