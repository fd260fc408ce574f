/** The compaction filter hook: what it drops is gone after compaction, what it keeps is untouched, nothing older resurfaces. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, MemoryFileSystem, RealClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { CompactionFilter } from '../../src/storage/index.ts';

const env = () => ({ fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(5, '0')}`);
const purge = utf8('purge');

test('entries the filter drops are gone after compaction; the rest and older shadowed versions behave', async () => {
  const seen: string[] = [];
  const filter: CompactionFilter = (k, _value, meta) => {
    seen.push(Buffer.from(k).toString());
    return meta !== undefined && Buffer.from(meta).equals(purge) ? 'drop' : 'keep';
  };
  const db = await openLsm('/db', { memtableBytes: 32 * 1024, compactionFilter: filter }, env());
  // Generation 1: every key with a plain value, compacted into a level ≥ 1.
  for (let i = 0; i < 2000; i++) await db.put(key(i), utf8(`old${i}`));
  await db.compact();
  // Generation 2: every third key overwritten with a purgeable version, which shadows the old one.
  for (let i = 0; i < 2000; i += 3) await db.put(key(i), utf8(`new${i}`), purge);
  await db.compact();
  assert.ok(seen.length > 0, 'the filter was consulted');
  for (let i = 0; i < 2000; i++) {
    const got = await db.get(key(i));
    // A purged newer version must not let the older one reappear.
    if (i % 3 === 0) assert.equal(got, undefined, `key ${i} was purged`);
    else assert.deepEqual(got?.value, Buffer.from(`old${i}`));
  }
  let scanned = 0;
  for await (const entry of db.iterate()) {
    assert.notEqual(Number(entry.key.toString().slice(4)) % 3, 0);
    scanned++;
  }
  assert.equal(scanned, 2000 - 667);
  assert.equal(db.stats().compactionFilterDrops, 667);
  await db.close();
});

test('a filter that is not a function is refused with a clear error', async () => {
  await assert.rejects(
    openLsm('/db', { compactionFilter: 'drop' as unknown as CompactionFilter }, env()),
    (e: unknown) => e instanceof InvalidArgumentError && /compactionFilter must be a function/.test(e.message),
  );
});
