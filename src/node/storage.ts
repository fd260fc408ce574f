/**
 * The one place where a node creates its storage engine, so switching or
 * tuning the engine touches nothing else. Data lives in `<data>/db`.
 */
import type { Clock, FileSystem, Logger } from '../core/index.ts';
import { joinPath } from '../core/index.ts';
import type { Engine } from '../storage/index.ts';
import { openLsm } from '../storage/index.ts';
import type { NodeConfig } from './config.ts';

export const engineDirName = 'db';

export async function openNodeEngine(config: NodeConfig, env: { fs: FileSystem; clock: Clock; log: Logger }): Promise<Engine> {
  const dir = joinPath(config.dataDir, engineDirName);
  await env.fs.mkdirp(dir);
  return openLsm(dir, { sync: config.walSync, syncIntervalMs: config.walSyncIntervalMs }, { fs: env.fs, clock: env.clock, log: env.log.child({ component: 'storage' }) });
}
