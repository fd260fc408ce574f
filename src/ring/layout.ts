/**
 * The placement data of a ring, the parts both strategies share: an owner per
 * partition in ring order (and, for random, the tokens), plus the checks on
 * the numbers that shape it.
 */
import { InvalidArgumentError } from '../core/index.ts';
import { maxTokensPerNode, redisSlotCount, tokenSpaceSize } from './constants.ts';
import { buildTokens, type TokenRing } from './tokens.ts';
import { show, type NodeDescriptor } from './topology.ts';

export type Strategy = 'balanced' | 'random';

/** Width of one slot on the random strategy's 32-bit circle: slot s sits at s × slotWidth. */
export const slotWidth = tokenSpaceSize / redisSlotCount;

export interface Layout {
  readonly partitionCount: number;
  /** Owner index of each partition in ring order (−1: no owner, only in an empty ring). */
  readonly owners: Int32Array;
  readonly tokens: TokenRing | null;
}

export function randomLayout(nodes: readonly NodeDescriptor[], tokensPerNode: number): Layout {
  const tokens = buildTokens(nodes, tokensPerNode);
  // An empty random ring still has one partition (the whole circle) with no replicas.
  const owners = tokens.owners.length === 0 ? Int32Array.of(-1) : tokens.owners;
  return { partitionCount: owners.length, owners, tokens };
}

export function checkPartitionCount(q: number): number {
  if (!Number.isInteger(q) || q < 1 || q > redisSlotCount || (q & (q - 1)) !== 0) {
    throw new InvalidArgumentError(`Cannot use ${show(q)} partitions: it must be a power of two from 1 to ${redisSlotCount}, so each partition is a run of Redis slots`);
  }
  return q;
}

export function checkTokensPerNode(t: number): number {
  if (!Number.isInteger(t) || t < 1 || t > maxTokensPerNode) {
    throw new InvalidArgumentError(`Cannot use ${show(t)} tokens per node: it must be an integer from 1 to ${maxTokensPerNode}`);
  }
  return t;
}

export function checkFits(nodeCount: number, partitions: number): void {
  if (nodeCount > partitions) {
    throw new InvalidArgumentError(`Cannot place ${nodeCount} nodes on ${partitions} partitions: every node needs at least one (raise partitionCount)`);
  }
}
