/**
 * Read repair (Dynamo §5): after a read has answered the client, wait for the
 * remaining replicas, merge everything seen, and send the merged object to
 * each replica that answered with less (stale or missing). Replicas that did
 * not answer are left to hinted handoff and anti-entropy.
 */
import type { Logger, NodeId } from '../core/index.ts';
import { describeKey } from '../core/index.ts';
import type { ObjectModel } from './coordinator.ts';
import type { Attempt } from './quorum.ts';

export interface ReadRepairDeps<O> {
  model: ObjectModel<O>;
  localId: NodeId;
  /** Sends the encoded object to a replica (a kv.apply without hint). */
  apply(node: NodeId, key: Uint8Array, encoded: Uint8Array): Promise<void>;
  log: Logger;
  onRepair(node: NodeId): void;
}

/** The replicas in `answers` that lack part of `merged`. */
export function staleReplicas<O>(model: ObjectModel<O>, answers: ReadonlyArray<{ owner: NodeId; value: O | undefined }>, merged: O): NodeId[] {
  return answers.filter((a) => !model.covers(a.value, merged)).map((a) => a.owner);
}

function allEqual<O>(model: ObjectModel<O>, objects: readonly O[]): boolean {
  const first = objects[0];
  if (first === undefined) return true;
  const equal = model.equal;
  if (equal !== undefined) return objects.every((other) => other === first || equal(first, other));
  const bytes = Buffer.from(model.encode(first));
  for (let i = 1; i < objects.length; i++) {
    const other = objects[i] as O;
    if (other !== first && !bytes.equals(model.encode(other))) return false;
  }
  return true;
}

export class ReadRepairer<O> {
  constructor(private readonly deps: ReadRepairDeps<O>) {}

  /** Waits for every replica's answer to a read, then repairs those that were behind. */
  async afterRead(key: Uint8Array, attempts: ReadonlyArray<Attempt<O | undefined>>): Promise<NodeId[]> {
    const outcomes = await Promise.all(attempts.map(async (a) => ({ owner: a.owner, outcome: await a.outcome })));
    const answers: Array<{ owner: NodeId; value: O | undefined }> = [];
    for (const { owner, outcome } of outcomes) {
      if (outcome.ok) answers.push({ owner, value: outcome.value });
    }
    // The common case: every replica answered with the same object, nothing to merge or repair.
    if (answers.length > 0 && answers.every((a) => a.value !== undefined) && allEqual(this.deps.model, answers.map((a) => a.value as O))) return [];
    let merged: O | undefined;
    for (const { value } of answers) {
      if (value !== undefined) merged = merged === undefined ? value : this.deps.model.merge(merged, value);
    }
    if (merged === undefined) return [];
    const stale = staleReplicas(this.deps.model, answers, merged);
    if (stale.length === 0) return [];
    const encoded = this.deps.model.encode(merged);
    await Promise.all(
      stale.map(async (node) => {
        try {
          await this.deps.apply(node, key, encoded);
          this.deps.onRepair(node);
        } catch (error) {
          this.deps.log.debug('read repair failed', { node, key: describeKey(key), error });
        }
      }),
    );
    return stale;
  }
}
