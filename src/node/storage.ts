/**
 * The one place where a node creates its storage engine, so switching or
 * tuning the engine touches nothing else. Data lives in `<data>/db`.
 */
import type { Clock, FileSystem, Logger } from '../core/index.ts';
import { joinPath } from '../core/index.ts';
import type { Engine } from '../storage/index.ts';
import { openLsm } from '../storage/index.ts';
import { defaultTombstoneGraceMs, isPurgeableEntry } from '../replication/index.ts';
import type { NodeConfig } from './config.ts';

export const engineDirName = 'db';

export async function openNodeEngine(config: NodeConfig, env: { fs: FileSystem; clock: Clock; log: Logger }): Promise<Engine> {
  const dir = joinPath(config.dataDir, engineDirName);
  await env.fs.mkdirp(dir);
  // Compaction drops objects whose every version died more than the grace period
  // ago, reading only their metadata, so tombstones and expired values give their
  // space back in the files compaction rewrites anyway; the store's periodic purge
  // pass covers what compaction does not reach.
  const compactionFilter = (_key: Uint8Array, _value: Uint8Array, meta: Uint8Array | undefined): 'keep' | 'drop' =>
    isPurgeableEntry(meta, env.clock.wallMs(), defaultTombstoneGraceMs) ? 'drop' : 'keep';
  return openLsm(
    dir,
    { sync: config.walSync, syncIntervalMs: config.walSyncIntervalMs, memtableBytes: config.memtableMb * 1024 * 1024, compactionFilter },
    { fs: env.fs, clock: env.clock, log: env.log.child({ component: 'storage' }) },
  );
}
