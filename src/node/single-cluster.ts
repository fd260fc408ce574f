/**
 * The ClusterView of a node running alone (N = 1): itself, up and normal,
 * owning every partition. Partitions are the 16384 Redis Cluster slots
 * (CRC16 of the key or its {hash tag}), the layout the balanced ring uses, so
 * `replicasOf` gives the same partition numbers a cluster would.
 */
import { crc16 } from '../core/index.ts';
import type { ClusterView, NodeInfo, ReplicaInfo, RingInfo } from '../replication/index.ts';

export const slotCount = 16384;

/** Redis Cluster's hash-tag rule: hash only what is between the first "{" and the next "}" when non-empty. */
export function slotOf(key: Uint8Array): number {
  const open = key.indexOf(0x7b);
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) % slotCount;
  }
  return crc16(key) % slotCount;
}

export interface SingleNodeDescriptor {
  id: string;
  address: string;
  respAddress: string | null;
  httpAddress: string | null;
  dc: string;
  rack: string;
}

export class SingleNodeCluster implements ClusterView {
  readonly localId: string;
  private self: SingleNodeDescriptor;

  constructor(self: SingleNodeDescriptor) {
    this.localId = self.id;
    this.self = self;
  }

  /** Listeners bind after the view exists (ports may be 0): fill in where they ended up. */
  setAddresses(addresses: Partial<Pick<SingleNodeDescriptor, 'address' | 'respAddress' | 'httpAddress'>>): void {
    this.self = { ...this.self, ...addresses };
  }

  nodes(): NodeInfo[] {
    return [{ ...this.self, status: 'normal', liveness: 'up', partitions: slotCount }];
  }

  ring(): RingInfo {
    return {
      strategy: 'balanced',
      version: '1',
      partitionCount: slotCount,
      replicationFactor: 1,
      ranges: [{ start: 0, end: slotCount - 1, replicas: [this.localId] }],
    };
  }

  replicasOf(key: Uint8Array): ReplicaInfo {
    return { partition: slotOf(key), replicas: [this.localId], sloppy: [this.localId] };
  }
}
