/**
 * Node descriptors and replication settings, validated and put in canonical
 * (sorted) form so that the ring never depends on the order it was given them.
 */
import { InvalidArgumentError, type NodeId } from '../core/index.ts';
import { maxReplicationFactor, maxRingNodes } from './constants.ts';

/** A physical node as the ring sees it. */
export interface NodeDescriptor {
  readonly id: NodeId;
  readonly dc: string;
  readonly rack: string;
}

/**
 * How many home replicas each partition has: a plain N (spread over distinct
 * data centers, then racks, where possible), or a count per data center as in
 * Cassandra's NetworkTopologyStrategy (`{ dc1: 3, dc2: 2 }`), spread over
 * distinct racks within each data center.
 */
export type Replication = { readonly n: number } | { readonly perDc: Readonly<Record<string, number>> };

/** Replication in canonical form: per-DC pairs sorted by DC name. */
export type CanonicalReplication = { readonly n: number; readonly perDc: null } | { readonly n: null; readonly perDc: ReadonlyArray<readonly [string, number]> };

const maxNameChars = 256;
const maxShownChars = 80;

/**
 * A value from untrusted input rendered for an error message. Never throws:
 * String() and JSON.stringify() both can (bigints, hostile toString/toJSON).
 */
export function show(value: unknown): string {
  try {
    const json = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    if (json !== undefined) return json.length > maxShownChars ? `${json.slice(0, maxShownChars)}…` : json;
  } catch {
    // Unrenderable (a throwing getter or toJSON): fall back to its type.
  }
  return typeof value;
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxNameChars) {
    throw new InvalidArgumentError(`Cannot use ${what} ${show(value)}: it must be a string of 1 to ${maxNameChars} characters`);
  }
  return value;
}

function checkCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > maxReplicationFactor) {
    throw new InvalidArgumentError(`Cannot use ${show(value)} replicas for ${what}: it must be an integer from 1 to ${maxReplicationFactor}`);
  }
  return value;
}

/** Identity of a node's rack across data centers (rack names repeat between DCs); unambiguous for any names. */
export function rackKey(node: NodeDescriptor): string {
  return JSON.stringify([node.dc, node.rack]);
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Validates descriptors and returns copies sorted by id; duplicate ids are an error. */
export function canonicalNodes(nodes: readonly NodeDescriptor[]): NodeDescriptor[] {
  if (nodes.length > maxRingNodes) {
    throw new InvalidArgumentError(`Cannot build a ring of ${nodes.length} nodes: the limit is ${maxRingNodes}`);
  }
  // Array.from visits the holes of a sparse array (map skips them).
  const out = Array.from(nodes, (n: NodeDescriptor | undefined) => {
    if (typeof n !== 'object' || n === null) throw new InvalidArgumentError(`Cannot use node ${show(n)}: a node is an object { id, dc, rack }`);
    return { id: checkName(n.id, 'node id'), dc: checkName(n.dc, `data center of node ${n.id}`), rack: checkName(n.rack, `rack of node ${n.id}`) };
  });
  out.sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < out.length; i++) {
    if ((out[i] as NodeDescriptor).id === (out[i - 1] as NodeDescriptor).id) {
      throw new InvalidArgumentError(`Cannot build a ring with node ${(out[i] as NodeDescriptor).id} listed twice`);
    }
  }
  return out;
}

export function canonicalReplication(replication: Replication): CanonicalReplication {
  const shape = 'replication must be { n } or { perDc: { dc: count } }';
  if (typeof replication !== 'object' || replication === null) throw new InvalidArgumentError(`Cannot use replication ${show(replication)}: ${shape}`);
  if ('n' in replication) return { n: checkCount(replication.n, 'the ring'), perDc: null };
  if (typeof replication.perDc !== 'object' || replication.perDc === null || Array.isArray(replication.perDc)) {
    throw new InvalidArgumentError(`Cannot use replication ${show(replication)}: ${shape}`);
  }
  const pairs = Object.entries(replication.perDc).map(([dc, count]) => [checkName(dc, 'data center'), checkCount(count, `data center ${dc}`)] as const);
  if (pairs.length === 0) throw new InvalidArgumentError('Cannot use per-DC replication with no data centers: give at least one, e.g. { dc1: 3 }');
  pairs.sort((a, b) => compareIds(a[0], b[0]));
  return { n: null, perDc: pairs };
}

export function replicationToPlain(r: CanonicalReplication): Replication {
  return r.perDc === null ? { n: r.n } : { perDc: Object.fromEntries(r.perDc) };
}

/** Total home replicas per partition when every DC has enough nodes. */
export function totalReplicas(r: CanonicalReplication): number {
  return r.perDc === null ? r.n : r.perDc.reduce((sum, [, c]) => sum + c, 0);
}
