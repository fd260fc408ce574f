/**
 * The random strategy's tokens: node `id` sits at hash32(`id#i`) for i < T
 * on a 32-bit ring, and a position belongs to the first token at or after it
 * (clockwise), wrapping past the top. Tokens depend only on the node ids, so
 * every node derives the same ring from the same membership.
 */
import { InvalidArgumentError, utf8 } from '../core/index.ts';
import { hash32 } from './keyspace.ts';
import type { NodeDescriptor } from './topology.ts';

/** Most tokens a random ring holds in total; beyond it building and placement get slow. */
export const maxTotalTokens = 1 << 20;

export interface TokenRing {
  /** Token positions, ascending; equal positions are ordered by node id, then token number. */
  readonly positions: Uint32Array;
  /** Owner (node index) of each token. */
  readonly owners: Int32Array;
}

export function buildTokens(nodes: readonly NodeDescriptor[], tokensPerNode: number): TokenRing {
  const total = nodes.length * tokensPerNode;
  if (total > maxTotalTokens) {
    throw new InvalidArgumentError(`Cannot build a random ring of ${nodes.length} nodes × ${tokensPerNode} tokens = ${total} tokens: the limit is ${maxTotalTokens}`);
  }
  const raw = new Uint32Array(total);
  nodes.forEach((n, i) => {
    for (let t = 0; t < tokensPerNode; t++) {
      const bytes = utf8(`${n.id}#${t}`);
      raw[i * tokensPerNode + t] = hash32(bytes);
    }
  });
  // Index k encodes (node i, token t) as i·T + t, so ties sort by node id then token number.
  const order = new Int32Array(total);
  for (let k = 0; k < total; k++) order[k] = k;
  order.sort((a, b) => (raw[a] as number) - (raw[b] as number) || a - b);
  const positions = new Uint32Array(total);
  const owners = new Int32Array(total);
  for (let k = 0; k < total; k++) {
    const at = order[k] as number;
    positions[k] = raw[at] as number;
    owners[k] = Math.floor(at / tokensPerNode);
  }
  return { positions, owners };
}

/** Index of the first token at or after `position`, wrapping to 0 past the last. */
export function tokenAt(positions: Uint32Array, position: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((positions[mid] as number) < position) lo = mid + 1;
    else hi = mid;
  }
  return lo === positions.length ? 0 : lo;
}
