/** Shared builders for the ring tests. */
import type { NodeDescriptor, Ring } from '../../src/ring/index.ts';

export function node(id: string, dc = 'dc1', rack = 'r1'): NodeDescriptor {
  return { id, dc, rack };
}

export function nodes(count: number, prefix = 'node-', racks = 1, dcs = 1): NodeDescriptor[] {
  return Array.from({ length: count }, (_, i) => node(`${prefix}${String(i).padStart(3, '0')}`, `dc${(i % dcs) + 1}`, `r${(Math.floor(i / dcs) % racks) + 1}`));
}

export function keys(count: number, prefix = 'user'): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.from(`${prefix}${i}`));
}

/** Keys per primary owner. */
export function keyLoad(ring: Ring, sample: readonly Buffer[]): Map<string, number> {
  const load = new Map<string, number>(ring.nodes().map((n) => [n, 0]));
  for (const key of sample) {
    const owner = ring.ownerOf(ring.partitionOf(key)) as string;
    load.set(owner, (load.get(owner) ?? 0) + 1);
  }
  return load;
}

export function maxOverMean(values: Iterable<number>): number {
  const list = [...values];
  const mean = list.reduce((a, b) => a + b, 0) / list.length;
  return Math.max(...list) / mean;
}

/** Partitions per primary owner. */
export function partitionLoad(ring: Ring): Map<string, number> {
  const load = new Map<string, number>(ring.nodes().map((n) => [n, 0]));
  for (let p = 0; p < ring.partitionCount(); p++) {
    const owner = ring.ownerOf(p) as string;
    load.set(owner, (load.get(owner) ?? 0) + 1);
  }
  return load;
}

/** Home-replica count per node. */
export function replicaLoad(ring: Ring): Map<string, number> {
  const load = new Map<string, number>(ring.nodes().map((n) => [n, 0]));
  for (let p = 0; p < ring.partitionCount(); p++) for (const n of ring.preferenceList(p).home) load.set(n, (load.get(n) ?? 0) + 1);
  return load;
}

/** Partitions whose primary owner differs between two rings of equal partition count. */
export function movedPartitions(before: Ring, after: Ring): number[] {
  const out: number[] = [];
  for (let p = 0; p < before.partitionCount(); p++) if (before.ownerOf(p) !== after.ownerOf(p)) out.push(p);
  return out;
}
