/**
 * Keyspace-wide operations of the replicated KvApi: scan (SCAN, KEYS),
 * approximate count (DBSIZE) and flush (FLUSHALL). Unlike single-key requests
 * they touch every partition, so each asks one replica per run of slots or
 * every node once, through the coordinator's peer requests.
 */
import type { NodeId, WireMessage } from '../core/index.ts';
import { InvalidArgumentError, UnavailableError } from '../core/index.ts';
import type { ReplicaBackend } from './coordinator.ts';
import { slotCount } from './keys.ts';
import { parseCountReply, parseScanReply, type ScanRequest } from './messages.ts';
import { replicasForN, type NamespaceReplication, type NodeLiveness, type Placement } from './placement.ts';
import { settle, type Outcome } from './quorum.ts';

/** Remote scan requests one scan call may make before returning a cursor. */
export const maxScanRequestsPerCall = 64;
/** Largest `count` a scan may ask for. */
export const maxScanCount = 10_000;

/** A key and its storage slot (keys.ts slotOf). */
export interface ScanPosition {
  slot: number;
  key: Uint8Array;
}

export interface KeyspaceDeps {
  localId: NodeId;
  placement: Placement;
  liveness: NodeLiveness;
  backend: Pick<ReplicaBackend<unknown>, 'scan' | 'count'>;
  /** Absent: every key has the ring's replication factor. */
  replication: NamespaceReplication | undefined;
  timeoutMs: number;
  /** A request to a peer (the coordinator's, with its in-flight limit). */
  request(node: NodeId, message: WireMessage, timeoutMs: number): Promise<WireMessage>;
  /** Flushes this node's replica and hints. */
  flushLocal(): Promise<void>;
}

export class KeyspaceOps {
  constructor(private readonly deps: KeyspaceDeps) {}

  /**
   * One page of live keys in storage order (slot, then key). As in LocalKv the
   * cursor is the next slot in decimal (redis-cli parses it as a number) and a
   * page holds whole slots, so a key present for the whole iteration is
   * returned exactly once and a page may hold more than `count` keys. Each
   * slot is read from one home replica of its partition, preferring this
   * node; a run of slots that replica would serve is read in one request.
   */
  async scan(cursor: string, count: number): Promise<{ cursor: string; keys: Uint8Array[] }> {
    if (!/^[0-9]{1,5}$/.test(cursor) || Number(cursor) >= slotCount) {
      throw new InvalidArgumentError(`Cannot resume a scan from cursor ${JSON.stringify(cursor)}: use "0" to start, then the cursor each reply returns`);
    }
    if (!Number.isInteger(count) || count < 1 || count > maxScanCount) {
      throw new InvalidArgumentError(`Cannot scan ${count} keys at a time: count must be an integer from 1 to ${maxScanCount}`);
    }
    const candidates = new Map<number, NodeId[]>();
    const candidatesOf = (s: number): NodeId[] => {
      const partition = this.deps.placement.partitionOfSlot(s);
      let list = candidates.get(partition);
      if (list === undefined) {
        list = this.scanCandidates(partition);
        candidates.set(partition, list);
      }
      return list;
    };
    let slot = Number(cursor);
    let after: ScanPosition | null = null;
    const keys: Uint8Array[] = [];
    let requests = 0;
    for (;;) {
      // Stop only between slots; finishing a started slot is not limited.
      if (after === null && (slot >= slotCount || keys.length >= count || requests >= maxScanRequestsPerCall)) break;
      const finishing = after !== null && keys.length >= count;
      let page: { entries: ScanPosition[]; done: boolean; to: number } | undefined;
      const failures: string[] = [];
      for (const node of candidatesOf(slot)) {
        let to = slot + 1;
        if (!finishing) while (to < slotCount && candidatesOf(to)[0] === node) to++;
        requests++;
        try {
          page = { ...(await this.scanAt(node, slot, to, after, finishing ? maxScanCount : count - keys.length)), to };
          break;
        } catch (error) {
          failures.push(`${node}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      if (page === undefined) {
        throw new UnavailableError(`Cannot scan slot ${slot}: none of its replicas answered (${failures.join('; ')})`, { answered: 0, required: 1 });
      }
      for (const entry of page.entries) keys.push(entry.key);
      const last = page.entries[page.entries.length - 1];
      if (page.done) {
        slot = page.to;
        after = null;
      } else if (last !== undefined) {
        slot = last.slot;
        after = last;
      }
    }
    return { cursor: slot >= slotCount ? '0' : String(slot), keys };
  }

  /**
   * Replicas that hold every key of a partition, this node first when it is
   * one: only the first minN home replicas do when namespaces have smaller N.
   */
  private scanCandidates(partition: number): NodeId[] {
    const list = this.deps.placement.preferenceList(partition);
    const home = this.deps.replication === undefined ? list.home : replicasForN(list, this.deps.replication.minN).home;
    const { localId, liveness } = this.deps;
    const local = home.filter((n) => n === localId);
    const up = home.filter((n) => n !== localId && liveness.isUp(n));
    const down = home.filter((n) => n !== localId && !liveness.isUp(n));
    return [...local, ...up, ...down];
  }

  private async scanAt(node: NodeId, fromSlot: number, toSlot: number, after: ScanPosition | null, count: number): Promise<{ entries: ScanPosition[]; done: boolean }> {
    if (node === this.deps.localId) return this.deps.backend.scan(fromSlot, toSlot, after, count);
    const message: ScanRequest = { type: 'kv.scan', fromSlot, toSlot, afterSlot: after?.slot ?? null, afterKey: after?.key ?? null, count };
    const reply = parseScanReply(await this.deps.request(node, message, this.deps.timeoutMs));
    return { entries: reply.keys.map((key, i) => ({ slot: reply.slots[i] as number, key })), done: reply.done };
  }

  /**
   * Live keys in the cluster, approximately: every node's local count summed
   * and divided by N (each key is held N times), scaled up for nodes that did
   * not answer; before there is a ring, this node's own count.
   */
  async approximateCount(): Promise<number> {
    const nodes = this.deps.placement.nodes();
    // No ring yet (a node starting or still joining): what it holds is all it
    // can count, and INFO / DBSIZE must answer rather than fail (a client's
    // ready check sends INFO as soon as it connects).
    if (nodes.length === 0) return this.deps.backend.count();
    const results = await Promise.all(nodes.map((node) => settle(this.countAt(node))));
    let sum = 0;
    let answered = 0;
    for (const r of results) {
      if (r.ok) {
        sum += r.value;
        answered++;
      }
    }
    if (answered === 0) throw new UnavailableError(`Cannot count keys: 0 of ${nodes.length} nodes answered`, { answered: 0, required: 1 });
    const n = Math.max(1, Math.min(this.deps.replication?.defaultN ?? this.deps.placement.preferenceList(0).home.length, nodes.length));
    return Math.round((sum * nodes.length) / answered / n);
  }

  private async countAt(node: NodeId): Promise<number> {
    if (node === this.deps.localId) return this.deps.backend.count();
    return parseCountReply(await this.deps.request(node, { type: 'kv.count' }, this.deps.timeoutMs)).count;
  }

  /**
   * Removes every key on every node (and their hints). Not versioned: a node
   * that misses the flush keeps its keys, so it fails unless all nodes answer.
   */
  async flushAll(): Promise<void> {
    const nodes = this.deps.placement.nodes();
    const results = await Promise.all(
      nodes.map((node) => settle<unknown>(node === this.deps.localId ? this.deps.flushLocal() : this.deps.request(node, { type: 'kv.flush' }, this.deps.timeoutMs))),
    );
    const failed = nodes.filter((_n, i) => !(results[i] as Outcome<unknown>).ok);
    if (failed.length > 0) {
      throw new UnavailableError(`Flushed ${nodes.length - failed.length} of ${nodes.length} nodes: ${failed.join(', ')} did not answer, run FLUSHALL again`, {
        answered: nodes.length - failed.length,
        required: nodes.length,
      });
    }
  }
}
