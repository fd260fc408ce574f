/** Shared by process-crash.test.ts and its child. */
import type { LsmOptions } from '../../src/storage/index.ts';

// Small memtables and files so the kills land during flushes and compactions too.
export const crashTestOptions: Partial<LsmOptions> = {
  sync: 'always',
  memtableBytes: 32 * 1024,
  targetFileBytes: 32 * 1024,
  level1Bytes: 128 * 1024,
  level0CompactionFiles: 2,
};

export function crashTestValue(round: number, n: number): string {
  return `value-${round}-${n}-${'v'.repeat(n % 97)}`;
}
