/**
 * The slab row cache on its own: a model-based property test (any mix of
 * offers, lookups and invalidations over a slab small enough to wrap and
 * evict constantly never returns a wrong or stale row, and its counts stay
 * consistent), plus the admission rule: hot rows survive a sweep of
 * one-time keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, silentLogger } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { CompactionFilter, EngineEntry, LsmEngine } from '../../src/storage/index.ts';
import { bloomHash } from '../../src/storage/bloom.ts';
import { RowCache } from '../../src/storage/row-cache.ts';

const hashOf = (key: Uint8Array): number => {
  const out = new Uint32Array(2);
  bloomHash(key, out);
  return out[0] as number;
};

/** The cached value (and metadata) of `key`, or undefined. */
function read(cache: RowCache, key: Uint8Array, hash = hashOf(key)): { value: string; meta: string | undefined } | undefined {
  const row = cache.find(key, hash);
  if (row < 0) return undefined;
  const start = cache.valueStart(row);
  const end = start + cache.valueLength(row);
  const metaLength = cache.metaLength(row);
  return {
    value: cache.bytes.subarray(start, end).toString('hex'),
    meta: metaLength < 0 ? undefined : cache.bytes.subarray(end, end + metaLength).toString('hex'),
  };
}

function offer(cache: RowCache, key: Uint8Array, value: Uint8Array, meta: Uint8Array | undefined, hash = hashOf(key)): void {
  // Values come embedded in a bigger buffer, as rows do from a block.
  const src = Buffer.concat([Buffer.from([9, 9, 9]), value, meta ?? Buffer.alloc(0), Buffer.from([7])]);
  cache.offer(key, hash, src, 3, 3 + value.length, meta === undefined ? -1 : 3 + value.length, 3 + value.length + (meta?.length ?? 0));
}

type Op =
  | { t: 'offer'; key: number; value: Uint8Array; meta: Uint8Array | undefined }
  | { t: 'find'; key: number }
  | { t: 'invalidate'; key: number };

const keyBytes = (k: number, collide: boolean): Uint8Array => Buffer.from(`k${k}`.padEnd(collide ? 4 : 3 + (k % 40), '.'));

test('row cache: lookups after any mix of offers, hits and invalidations equal a Map (wrapping, evicting, colliding)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 256, max: 6000 }),
      fc.boolean(),
      fc.array<Op>(
        fc.oneof(
          { weight: 5, arbitrary: fc.record({ t: fc.constant('offer' as const), key: fc.nat(60), value: fc.uint8Array({ maxLength: 90 }), meta: fc.option(fc.uint8Array({ maxLength: 12 }), { nil: undefined }) }) },
          { weight: 5, arbitrary: fc.record({ t: fc.constant('find' as const), key: fc.nat(60) }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('invalidate' as const), key: fc.nat(60) }) },
        ),
        { maxLength: 400, size: 'max' },
      ),
      (budget, sameHash, ops) => {
        const cache = new RowCache(budget);
        // sameHash: every key hashes alike, so every probe walks one long run (and deletions shift it).
        const h = (k: number): number => (sameHash ? 0x1234567 + (k % 3) : hashOf(keyBytes(k, false)));
        const model = new Map<number, { value: string; meta: string | undefined }>();
        for (const op of ops) {
          const key = keyBytes(op.key, sameHash);
          if (op.t === 'offer') {
            // The engine offers only keys it did not find cached, with the current value.
            if (read(cache, key, h(op.key)) !== undefined) cache.invalidate(key, h(op.key));
            offer(cache, key, op.value, op.meta, h(op.key));
            model.set(op.key, { value: Buffer.from(op.value).toString('hex'), meta: op.meta && Buffer.from(op.meta).toString('hex') });
          } else if (op.t === 'invalidate') {
            cache.invalidate(key, h(op.key));
            model.delete(op.key);
          } else {
            const got = read(cache, key, h(op.key));
            // A cache may forget, never lie.
            if (got !== undefined) assert.deepEqual(got, model.get(op.key), `key ${op.key}`);
          }
        }
        let found = 0;
        for (let k = 0; k <= 60; k++) {
          const got = read(cache, keyBytes(k, sameHash), h(k));
          if (got === undefined) continue;
          found++;
          assert.deepEqual(got, model.get(k), `key ${k} at the end`);
        }
        assert.equal(found, cache.entries, 'entries counts exactly the rows a lookup finds');
        assert.ok(cache.usedBytes <= budget, `${cache.usedBytes} bytes held, budget ${budget}`);
      },
    ),
    { numRuns: 300 },
  );
});

test('row cache: a one-pass sweep admits few rows and hot rows survive it; uniform reads over more keys than fit rarely replace rows', () => {
  const cache = new RowCache(64 * 1024);
  const value = Buffer.alloc(100, 1);
  const key = (i: number): Buffer => Buffer.from(`key:${String(i).padStart(8, '0')}`);
  // Fill, each key offered twice (the doorkeeper admits a key's second read), until the first eviction.
  let n = 0;
  const readOnce = (k: Buffer): void => {
    // As the engine does: offer only after a miss.
    if (cache.find(k, hashOf(k)) < 0) offer(cache, k, value, undefined);
  };
  while (cache.evictions === 0 && cache.refusals === 0 && n < 10_000) {
    readOnce(key(n));
    readOnce(key(n));
    n++;
  }
  const capacityRows = cache.entries;
  assert.ok(capacityRows > 300, `a 64 KiB cache holds ${capacityRows} rows of 140 bytes`);
  // The hot set: keys 10..109 (the fill stopped at the first eviction, of key 0), read (so referenced).
  const hotKey = (i: number): Buffer => key(10 + i);
  for (let i = 0; i < 100; i++) assert.notEqual(cache.find(hotKey(i), hashOf(hotKey(i))), -1);
  const admittedBeforeSweep = cache.admissions;
  // A sweep of 20,000 keys read once each (each offered after its miss).
  for (let i = 100_000; i < 120_000; i++) {
    if (cache.find(key(i), hashOf(key(i))) < 0) offer(cache, key(i), value, undefined);
    // The hot keys keep being read meanwhile.
    const hot = hotKey(i % 100);
    if (i % 50 === 0 && cache.find(hot, hashOf(hot)) < 0) offer(cache, hot, value, undefined);
  }
  let hotLeft = 0;
  for (let i = 0; i < 100; i++) if (cache.find(hotKey(i), hashOf(hotKey(i))) >= 0) hotLeft++;
  assert.ok(hotLeft >= 95, `${hotLeft} of 100 hot rows survived the sweep`);
  assert.ok(cache.admissions - admittedBeforeSweep < 1000, `a one-pass sweep of 20,000 keys admitted ${cache.admissions - admittedBeforeSweep} rows`);

  // Uniform reads over 4x more keys than fit: few admissions per read.
  const before = cache.admissions;
  let x = 12345;
  const reads = 40_000;
  for (let r = 0; r < reads; r++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const k = key(200_000 + (x % (4 * capacityRows)));
    if (cache.find(k, hashOf(k)) < 0) offer(cache, k, value, undefined);
  }
  const perRead = (cache.admissions - before) / reads;
  assert.ok(perRead < 0.2, `uniform reads admitted ${(perRead * 100).toFixed(1)} rows per 100 reads`);
});

test('row cache: a budget too small for an index caches nothing; oversized rows are not cached', () => {
  const none = new RowCache(0);
  assert.equal(none.enabled, false);
  offer(none, Buffer.from('a'), Buffer.from('b'), undefined);
  assert.equal(none.entries, 0);
  const small = new RowCache(4096);
  offer(small, Buffer.from('big'), Buffer.alloc(1000), undefined);
  assert.equal(small.find(Buffer.from('big'), hashOf(Buffer.from('big'))), -1, 'a row over 1/16 of the slab stays out');
  offer(small, Buffer.from('ok'), Buffer.alloc(100, 2), Buffer.from([1, 2]));
  assert.equal(small.find(Buffer.from('ok'), hashOf(Buffer.from('ok'))), -1, 'a key read once is not admitted');
  offer(small, Buffer.from('ok'), Buffer.alloc(100, 2), Buffer.from([1, 2]));
  assert.deepEqual(read(small, Buffer.from('ok')), { value: Buffer.alloc(100, 2).toString('hex'), meta: '0102' });
});

type EngineOp =
  | { t: 'put'; key: number; value: Uint8Array; purge: boolean }
  | { t: 'delete'; key: number }
  | { t: 'get'; key: number; view: boolean }
  | { t: 'compact' }
  | { t: 'churn'; seed: number };

const purgeMeta = Buffer.from('purge');
const show = (e: EngineEntry | undefined): string | undefined =>
  e === undefined ? undefined : `${Buffer.from(e.value).toString('hex')}/${e.meta === undefined ? '-' : Buffer.from(e.meta).toString('hex')}`;

test('engine with the row cache: reads after any mix of put/delete/flush/compaction (filter drops included) equal a Map', async () => {
  const filter: CompactionFilter = (_k, _v, meta) => (meta !== undefined && purgeMeta.equals(meta) ? 'drop' : 'keep');
  const engineKey = (k: number): Buffer => Buffer.from(`key-${k}`);
  const totals = { rowHits: 0, flushes: 0, compactions: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array<EngineOp>(
        fc.oneof(
          { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), key: fc.nat(40), value: fc.uint8Array({ maxLength: 100 }), purge: fc.boolean() }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), key: fc.nat(40) }) },
          { weight: 10, arbitrary: fc.record({ t: fc.constant('get' as const), key: fc.nat(40), view: fc.boolean() }) },
          { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('churn' as const), seed: fc.nat(1000) }) },
        ),
        { minLength: 1, maxLength: 300, size: 'max' },
      ),
      async (ops) => {
        // A tiny memtable flushes every few puts; a big block cache serves most table reads; a small row cache wraps.
        const db: LsmEngine = await openLsm('/db', {
          memtableBytes: 1024, blockBytes: 256, targetFileBytes: 1024, level1Bytes: 2048, levelSizeMultiplier: 2,
          level0CompactionFiles: 2, level0StopWritesFiles: 4, blockCacheBytes: 1 << 20, rowCacheBytes: 4096, compactionFilter: filter,
        }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
        // purgeable: a background compaction may drop the entry at any time, so a read may see it or not;
        // once it was seen gone it must stay gone (a cached row must not bring it back).
        const model = new Map<number, { shown: string; purgeable: boolean }>();
        try {
          for (const op of ops) {
            if (op.t === 'put') {
              if (op.purge) await db.put(engineKey(op.key), op.value, purgeMeta);
              else await db.put(engineKey(op.key), op.value);
              model.set(op.key, { shown: show({ key: engineKey(op.key), value: op.value, meta: op.purge ? purgeMeta : undefined }) as string, purgeable: op.purge });
            } else if (op.t === 'delete') {
              await db.delete(engineKey(op.key));
              model.delete(op.key);
            } else if (op.t === 'churn') {
              // Writes to other keys: flushes (and compactions) move the tested keys into tables.
              for (let i = 0; i < 24; i++) await db.put(Buffer.from(`noise-${(op.seed + i) % 200}`), Buffer.alloc(40, i));
            } else if (op.t === 'compact') {
              // The filter sees only entries a compaction rewrites (not trivial moves): purgeables stay maybe-gone.
              await db.compact();
            } else {
              const got = show(op.view ? db.getNowView(engineKey(op.key)) : db.getNow(engineKey(op.key)));
              const want = model.get(op.key);
              if (want?.purgeable === true && got === undefined) model.delete(op.key);
              else assert.equal(got, want?.shown, `get key-${op.key}`);
            }
          }
          const stats = db.stats();
          totals.rowHits += stats.rowCacheHits as number;
          totals.flushes += stats.flushes as number;
          totals.compactions += stats.compactions as number;
        } finally {
          await db.close();
        }
      },
    ),
    { numRuns: 60 },
  );
  // The property must have exercised what it is about.
  assert.ok(totals.rowHits > 20 && totals.flushes > 100 && totals.compactions > 20, JSON.stringify(totals));
});
