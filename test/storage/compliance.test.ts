/** The engine compliance suite against MemoryEngine and the LSM engine on both file systems. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFileSystem, RealClock, RealFileSystem, silentLogger } from '../../src/core/index.ts';
import type { FileSystem } from '../../src/core/index.ts';
import { MemoryEngine, openLsm } from '../../src/storage/index.ts';
import type { Engine, LsmOptions } from '../../src/storage/index.ts';
import { engineComplianceSuite } from './compliance-suite.ts';

engineComplianceSuite({ name: 'MemoryEngine', create: async () => new MemoryEngine() });

function lsmHarness(name: string, makeFs: () => { fs: FileSystem; dir: string; cleanup(): void }, options: Partial<LsmOptions>): void {
  let current: { fs: FileSystem; dir: string; cleanup(): void } | undefined;
  engineComplianceSuite({
    name,
    create: async () => {
      current = makeFs();
      return openLsm(current.dir, options, { fs: current.fs, clock: new RealClock(), log: silentLogger });
    },
    reopen: async (engine: Engine) => {
      await engine.close();
      const c = current as { fs: FileSystem; dir: string };
      return openLsm(c.dir, options, { fs: c.fs, clock: new RealClock(), log: silentLogger });
    },
    cleanup: async () => {
      current?.cleanup();
      current = undefined;
    },
  });
}

const memoryFs = () => ({ fs: new MemoryFileSystem(), dir: '/db', cleanup: () => undefined });
const realFs = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-compliance-'));
  return { fs: new RealFileSystem(), dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
};

lsmHarness('LSM on MemoryFileSystem', memoryFs, {});
// Tiny memtables and files so that every case also runs through SSTables and compaction.
lsmHarness('LSM on MemoryFileSystem, tiny memtable', memoryFs, { memtableBytes: 1024, targetFileBytes: 2048, level1Bytes: 4096, blockBytes: 256 });
lsmHarness('LSM on RealFileSystem, sync always', realFs, { sync: 'always', memtableBytes: 2048, targetFileBytes: 4096, level1Bytes: 8192, blockBytes: 512 });
