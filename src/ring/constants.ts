/**
 * Limits and fixed numbers of the ring. docs/ring.md explains each choice.
 */

/** Redis Cluster's key space: slot = CRC16(key or its {hash tag}) mod 16384. */
export const redisSlotCount = 16384;

/** Default partition count of the balanced strategy: one partition per Redis slot. */
export const defaultPartitionCount = redisSlotCount;

/** Default virtual nodes per physical node of the random strategy. */
export const defaultTokensPerNode = 256;

/** Largest token count per node the random strategy accepts (memory and build time grow with it). */
export const maxTokensPerNode = 4096;

/** Largest membership a ring accepts: node indexes are kept in 16-bit arrays. */
export const maxRingNodes = 4096;

/** Default replication factor N when no per-DC counts are given. */
export const defaultReplicationFactor = 3;

/** Largest replica count for the whole ring or for one data center. */
export const maxReplicationFactor = 16;

/**
 * Fallback nodes kept per partition beyond the home replicas. A sloppy quorum
 * that needs more stand-ins than this has lost more than this many nodes next
 * to the partition, and fails with too few replicas rather than walk further.
 * It is above maxReplicationFactor so a coordinator asking for a larger N per
 * namespace still finds enough distinct nodes.
 */
export const maxFallbackNodes = 32;

/** Version of the serialized ring state (RingState.format); bump on any layout change. */
export const ringStateFormat = 1;

/** Size of the random strategy's position space: 32-bit hashes. */
export const tokenSpaceSize = 2 ** 32;
