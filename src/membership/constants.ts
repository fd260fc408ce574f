/**
 * Limits and defaults of the gossip protocol. Every limit is named, with its
 * unit last; docs/membership.md explains how the defaults were chosen.
 */

/** Version of the gossip messages (docs/membership.md); a syn of another version is dropped with a warning. */
export const gossipProtocolVersion = 1;

/** How often a node bumps its heartbeat and starts one gossip round. */
export const defaultGossipIntervalMs = 1000;
/** Live peers contacted per round. Cassandra uses 1; 2 makes heartbeats arrive more regularly, which cuts the phi-8 detection time by a third (docs/membership.md has the measurement). */
export const defaultFanout = 2;
/**
 * Phi above which a peer is suspected. 8 is Cassandra's default: with an
 * exponential inter-arrival model it means ≈ 18 mean intervals of silence,
 * so a lossy but alive peer is practically never suspected.
 */
export const defaultPhiThreshold = 8;
/** Inter-arrival samples kept per peer (a sliding window, like Cassandra's). */
export const detectorWindowSize = 100;
/** A suspicion gossiped by another node counts as confirmation only if that node's entry is this fresh. */
export const suspicionFreshIntervals = 10;
/** How long a seed identification may take before it is retried on a later round. */
export const seedIdentifyTimeoutMs = 2000;

/** Members tracked at most; entries for further unknown nodes are dropped with a warning. */
export const maxMembers = 1024;
/** Full entries carried by one ack/ack2 (the rest follow in later rounds). */
export const maxEntriesPerMessage = 128;
/** Digests carried by one syn: the whole table, so it is bounded by maxMembers. */
export const maxDigestsPerMessage = maxMembers;
/** Longest node id, address, dc, rack or extra-address value accepted from the wire. */
export const maxFieldChars = 256;
/** Extra named addresses (resp, http, …) per node. */
export const maxExtraAddresses = 8;
/** Suspicions one node may gossip at once (one per other member at most). */
export const maxSuspectsPerEntry = maxMembers;
/** Largest encoded ring state accepted in gossip (the ring is one per cluster, so it may be big). */
export const maxRingStateBytes = 4 * 1024 * 1024;
