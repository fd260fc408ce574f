/**
 * A hint queue held in memory, for tests of handoff logic that do not need
 * durability. The simulation uses the durable HintStore instead.
 */
import type { NodeId } from '../../src/core/index.ts';
import { OverloadedError } from '../../src/core/index.ts';
import type { HintBacklog, HintQueue, QueuedHint } from '../../src/replication/handoff.ts';

export class MemoryHintQueue implements HintQueue {
  private readonly queues = new Map<NodeId, QueuedHint[]>();
  private seq = 0;

  constructor(private readonly maxHintsPerDestination = 10_000) {}

  async append(target: NodeId, key: Uint8Array, object: Uint8Array): Promise<void> {
    const queue = this.queues.get(target) ?? [];
    if (queue.length >= this.maxHintsPerDestination) {
      throw new OverloadedError(`Cannot keep another hint for ${target}: its backlog holds ${queue.length} hints, the limit is ${this.maxHintsPerDestination}`);
    }
    queue.push({ seq: ++this.seq, key: Uint8Array.from(key), object: Uint8Array.from(object) });
    this.queues.set(target, queue);
  }

  async peek(target: NodeId, max: number): Promise<QueuedHint[]> {
    return (this.queues.get(target) ?? []).slice(0, max);
  }

  async acknowledge(target: NodeId, seq: number): Promise<void> {
    const queue = this.queues.get(target);
    if (queue === undefined) return;
    const left = queue.filter((h) => h.seq > seq);
    if (left.length === 0) this.queues.delete(target);
    else this.queues.set(target, left);
  }

  destinations(): NodeId[] {
    return [...this.queues.keys()].sort();
  }

  backlog(target: NodeId): HintBacklog {
    const queue = this.queues.get(target) ?? [];
    return { hints: queue.length, bytes: queue.reduce((sum, h) => sum + h.key.length + h.object.length, 0) };
  }

  async clear(): Promise<void> {
    this.queues.clear();
  }
}
