/**
 * The ring's serialized form (docs/ring.md §5) and its validation: states
 * arrive from peers, so every field is checked before it is trusted.
 */
import { InvalidArgumentError } from '../core/index.ts';
import { ringStateFormat } from './constants.ts';
import { checkPartitionCount, checkTokensPerNode, randomLayout, type Layout, type Strategy } from './layout.ts';
import { canonicalNodes, canonicalReplication, show, type CanonicalReplication, type NodeDescriptor, type Replication } from './topology.ts';

/**
 * The serialized ring (docs/ring.md, format 1): plain data that msgpack and
 * JSON carry. `owners` lists, for each balanced partition, the index of its
 * owner in `nodes` (sorted by id); the random strategy derives its tokens from
 * the node ids and stores none.
 */
export interface RingState {
  format: number;
  strategy: Strategy;
  /** Number of membership changes applied since the ring was created. */
  epoch: number;
  partitionCount: number;
  tokensPerNode: number | null;
  replication: Replication;
  nodes: NodeDescriptor[];
  owners: number[] | null;
}

/** A state's contents once checked: what a Ring is built from. */
export interface ParsedState {
  strategy: Strategy;
  epoch: number;
  nodes: NodeDescriptor[];
  replication: CanonicalReplication;
  layout: Layout;
  tokensPerNode: number | null;
}

export function parseRingState(state: RingState): ParsedState {
  const bad = (why: string): InvalidArgumentError => new InvalidArgumentError(`Cannot load ring state: ${why}`);
  if (typeof state !== 'object' || state === null) throw bad('it is not an object');
  if (state.format !== ringStateFormat) throw bad(`its format is ${show(state.format)}, this build reads format ${ringStateFormat}`);
  if (!Number.isSafeInteger(state.epoch) || state.epoch < 0) throw bad(`epoch ${show(state.epoch)} is not a non-negative integer`);
  if (!Array.isArray(state.nodes)) throw bad('nodes is not an array');
  const nodes = canonicalNodes(state.nodes);
  if (nodes.some((n, i) => n.id !== (state.nodes[i] as NodeDescriptor).id)) throw bad('nodes are not sorted by id');
  const replication = canonicalReplication(state.replication);
  if (state.strategy === 'random') {
    const t = checkTokensPerNode(state.tokensPerNode ?? Number.NaN);
    if (state.owners !== null) throw bad('a random ring carries no owners');
    const layout = randomLayout(nodes, t);
    if (state.partitionCount !== layout.partitionCount) throw bad(`partitionCount is ${show(state.partitionCount)}, ${nodes.length} nodes × ${t} tokens give ${layout.partitionCount}`);
    return { strategy: 'random', epoch: state.epoch, nodes, replication, layout, tokensPerNode: t };
  }
  if (state.strategy !== 'balanced') throw bad(`strategy ${show(state.strategy)} is unknown`);
  if (state.tokensPerNode !== null) throw bad('a balanced ring has no tokensPerNode');
  const q = checkPartitionCount(state.partitionCount);
  if (!Array.isArray(state.owners) || state.owners.length !== q) throw bad(`owners must list ${q} partitions`);
  const limit = nodes.length;
  const owners = new Int32Array(q);
  for (let p = 0; p < q; p++) {
    // Checked before any conversion: a bigint or object would throw a TypeError in Int32Array.
    const raw: unknown = state.owners[p];
    const valid = typeof raw === 'number' && Number.isInteger(raw) && (limit === 0 ? raw === -1 : raw >= 0 && raw < limit);
    if (!valid) throw bad(`partition ${p} has owner ${show(raw)}, not a node index below ${limit}`);
    owners[p] = raw;
  }
  return { strategy: 'balanced', epoch: state.epoch, nodes, replication, layout: { partitionCount: q, owners, tokens: null }, tokensPerNode: null };
}
