/**
 * Leveled compaction (as LevelDB): L0 holds flushed memtables, which may
 * overlap; every deeper level is one sorted run of disjoint tables, each level
 * `levelSizeMultiplier` times the one above. Picking is pure (this file);
 * running a compaction is in lsm-engine.ts, in steps that yield to the event
 * loop so reads and writes go on meanwhile.
 */
import { maxLevels } from './options.ts';
import type { LsmOptions } from './options.ts';
import type { Table } from './sstable.ts';

export interface CompactionPick {
  level: number;
  /** Tables of `level`, newest first for L0. */
  inputs: Table[];
  /** Tables of `level + 1` overlapping the inputs. */
  overlaps: Table[];
}

export function levelBytes(tables: readonly Table[]): number {
  let sum = 0;
  for (const t of tables) sum += t.meta.size;
  return sum;
}

export function levelTargetBytes(level: number, options: LsmOptions): number {
  return options.level1Bytes * options.levelSizeMultiplier ** (level - 1);
}

/** How urgently each level needs compaction; ≥ 1 means now. */
export function levelScores(levels: readonly (readonly Table[])[], options: LsmOptions): number[] {
  const scores: number[] = [];
  for (let level = 0; level < maxLevels - 1; level++) {
    const tables = levels[level] ?? [];
    scores.push(level === 0 ? tables.length / options.level0CompactionFiles : levelBytes(tables) / levelTargetBytes(level, options));
  }
  return scores;
}

export function overlapping(tables: readonly Table[], smallest: Buffer, largest: Buffer): Table[] {
  return tables.filter((t) => t.meta.largest.compare(smallest) >= 0 && t.meta.smallest.compare(largest) <= 0);
}

export function keyRange(tables: readonly Table[]): [Buffer, Buffer] {
  let smallest = (tables[0] as Table).meta.smallest;
  let largest = (tables[0] as Table).meta.largest;
  for (const t of tables) {
    if (t.meta.smallest.compare(smallest) < 0) smallest = t.meta.smallest;
    if (t.meta.largest.compare(largest) > 0) largest = t.meta.largest;
  }
  return [smallest, largest];
}

/**
 * The compaction to run next, or undefined. `pointers[level]` is the largest
 * key last compacted out of that level, so levels ≥ 1 are compacted round-robin
 * across their key range (every table gets its turn).
 */
export function pickCompaction(
  levels: readonly (readonly Table[])[],
  options: LsmOptions,
  pointers: (Buffer | undefined)[],
): CompactionPick | undefined {
  const scores = levelScores(levels, options);
  let level = -1;
  let best = 1;
  scores.forEach((score, i) => {
    if (score >= best) {
      best = score;
      level = i;
    }
  });
  if (level < 0) return undefined;
  return pickForLevel(levels, level, pointers, false);
}

/** Compaction of `level` (all its tables when `whole`, else one table past the pointer). */
export function pickForLevel(
  levels: readonly (readonly Table[])[],
  level: number,
  pointers: (Buffer | undefined)[],
  whole: boolean,
): CompactionPick | undefined {
  const tables = levels[level] ?? [];
  if (tables.length === 0) return undefined;
  let inputs: Table[];
  if (level === 0 || whole) {
    inputs = [...tables];
  } else {
    const pointer = pointers[level];
    const next = pointer === undefined ? undefined : tables.find((t) => t.meta.smallest.compare(pointer) > 0);
    inputs = [next ?? (tables[0] as Table)];
  }
  const [smallest, largest] = keyRange(inputs);
  return { level, inputs, overlaps: overlapping(levels[level + 1] ?? [], smallest, largest) };
}

/**
 * True when no table below `outputLevel` can hold `key`: a deletion there
 * shadows nothing older and may be dropped.
 */
export function isBottommost(levels: readonly (readonly Table[])[], outputLevel: number, key: Buffer): boolean {
  for (let level = outputLevel + 1; level < levels.length; level++) {
    for (const t of levels[level] ?? []) {
      if (t.meta.smallest.compare(key) <= 0 && t.meta.largest.compare(key) >= 0) return false;
    }
  }
  return true;
}
