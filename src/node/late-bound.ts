/**
 * The front ends are built before the cluster layer exists: gossip must
 * advertise the front ends' bound ports (which may be 0 = any), so listeners
 * start first. These proxies let them hold a KvApi and ClusterView that are
 * filled in a moment later; a request in between gets a retryable 503-style
 * UnavailableError instead of a crash.
 */
import { UnavailableError } from '../core/index.ts';
import { wouldWait } from '../replication/index.ts';
import type {
  ClusterView,
  DurabilityListener,
  DurableLater,
  DurableNow,
  GetResult,
  KvApi,
  NodeInfo,
  PutResult,
  ReadOptions,
  ReplicaInfo,
  RingInfo,
  ScanResult,
  Winner,
  WouldWait,
  WriteOptions,
} from '../replication/index.ts';

function starting(): UnavailableError {
  return new UnavailableError('The node is still starting: retry in a moment', { answered: 0, required: 1 });
}

export class LateKv implements KvApi {
  target: KvApi | undefined;

  private kv(): KvApi {
    if (this.target === undefined) throw starting();
    return this.target;
  }

  async get(key: Uint8Array, options?: ReadOptions): Promise<GetResult> { return this.kv().get(key, options); }
  // The synchronous attempts pass through so the front ends keep their fast path; before the target exists they say wait, and the async call then answers 'starting'.
  winnerNow(key: Uint8Array, options?: ReadOptions): Winner | undefined | WouldWait {
    const target = this.target;
    return target?.winnerNow === undefined ? wouldWait : target.winnerNow(key, options);
  }
  putNow(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void> | DurableNow | WouldWait {
    const target = this.target;
    return target?.putNow === undefined ? wouldWait : target.putNow(key, value, options);
  }
  putNowThen(key: Uint8Array, value: Uint8Array, options: WriteOptions | undefined, listener: DurabilityListener, token: number): DurableNow | WouldWait | DurableLater {
    const target = this.target;
    return target?.putNowThen === undefined ? wouldWait : target.putNowThen(key, value, options, listener, token);
  }
  async put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<PutResult> { return this.kv().put(key, value, options); }
  async delete(key: Uint8Array, options?: WriteOptions): Promise<void> { return this.kv().delete(key, options); }
  async incrBy(key: Uint8Array, delta: bigint, options?: WriteOptions): Promise<bigint> { return this.kv().incrBy(key, delta, options); }
  async touch(key: Uint8Array, expiresAtMs: number | null, options?: WriteOptions): Promise<boolean> { return this.kv().touch(key, expiresAtMs, options); }
  async scan(cursor: string, count: number): Promise<ScanResult> { return this.kv().scan(cursor, count); }
  async approximateCount(): Promise<number> { return this.kv().approximateCount(); }
  async flushAll(): Promise<void> { return this.kv().flushAll(); }
}

export class LateClusterView implements ClusterView {
  target: ClusterView;

  /** Starts with a view that is valid before the cluster layer exists (the node alone). */
  constructor(initial: ClusterView) {
    this.target = initial;
  }

  get localId(): string { return this.target.localId; }
  nodes(): NodeInfo[] { return this.target.nodes(); }
  ring(): RingInfo { return this.target.ring(); }
  replicasOf(key: Uint8Array): ReplicaInfo { return this.target.replicasOf(key); }
}
