/**
 * The one place where a node creates its storage engine and the replica
 * store over it, so switching or tuning the engine touches nothing else, and
 * both take the grace period from the same setting. Data lives in `<data>/db`.
 */
import type { Clock, FileSystem, Logger, NodeId } from '../core/index.ts';
import { joinPath } from '../core/index.ts';
import type { Engine } from '../storage/index.ts';
import { openLsm } from '../storage/index.ts';
import { ReplicaStore, isPurgeableEntry } from '../replication/index.ts';
import { tombstoneGraceMsOf, type NodeConfig } from './config.ts';

export const engineDirName = 'db';

export async function openNodeEngine(config: NodeConfig, env: { fs: FileSystem; clock: Clock; log: Logger }): Promise<Engine> {
  const dir = joinPath(config.dataDir, engineDirName);
  await env.fs.mkdirp(dir);
  // Compaction drops objects whose every version died more than the grace period
  // ago, reading only their metadata, so tombstones and expired values give their
  // space back in the files compaction rewrites anyway; the store's periodic purge
  // pass covers what compaction does not reach. The grace is the store's own
  // (tombstoneGraceMsOf), or compaction could drop tombstones the store still keeps.
  const graceMs = tombstoneGraceMsOf(config);
  const compactionFilter = (_key: Uint8Array, _value: Uint8Array, meta: Uint8Array | undefined): 'keep' | 'drop' =>
    isPurgeableEntry(meta, env.clock.wallMs(), graceMs) ? 'drop' : 'keep';
  return openLsm(
    dir,
    { sync: config.walSync, syncIntervalMs: config.walSyncIntervalMs, memtableBytes: config.memtableMb * 1024 * 1024, compactionFilter },
    { fs: env.fs, clock: env.clock, log: env.log.child({ component: 'storage' }) },
  );
}

/** The node's replica store over `engine`, purging with the grace period the engine's compaction filter uses. */
export function createNodeStore(config: NodeConfig, engine: Engine, clock: Clock, nodeId: NodeId): ReplicaStore {
  return new ReplicaStore({ engine, clock, nodeId, objectCacheBytes: config.objectCacheMb * 1024 * 1024, tombstoneGraceMs: tombstoneGraceMsOf(config) });
}
