/**
 * Model-based property test: random sequences of put/delete/batch/get/
 * iterate/reopen/compact against a Map model, with memtables and files tiny
 * enough that flushes, compactions and multi-level reads happen constantly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, compareBytes, silentLogger } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { BatchOp, KeyRange, LsmEngine, LsmOptions } from '../../src/storage/index.ts';

type Op =
  | { t: 'put'; key: Uint8Array; value: Uint8Array; meta: Uint8Array | undefined }
  | { t: 'delete'; key: Uint8Array }
  | { t: 'batch'; ops: BatchOp[] }
  | { t: 'get'; key: Uint8Array }
  | { t: 'iterate'; range: KeyRange }
  | { t: 'reopen' }
  | { t: 'compact' };

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 7 });
const valueArb = fc.uint8Array({ maxLength: 160 });
const metaArb = fc.option(fc.uint8Array({ maxLength: 4 }), { nil: undefined });
const batchOpArb: fc.Arbitrary<BatchOp> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb }),
  fc.record({ type: fc.constant('delete' as const), key: keyArb }),
);
const rangeArb: fc.Arbitrary<KeyRange> = fc.record(
  { gte: keyArb, gt: keyArb, lte: keyArb, lt: keyArb, reverse: fc.boolean(), limit: fc.integer({ min: 0, max: 10 }) },
  { requiredKeys: [] },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('put' as const), key: keyArb, value: valueArb, meta: metaArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('delete' as const), key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('batch' as const), ops: fc.array(batchOpArb, { maxLength: 8, size: 'max' }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('get' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('iterate' as const), range: rangeArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
);

interface ModelEntry {
  value: Uint8Array;
  meta: Uint8Array | undefined;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function modelScan(model: Map<string, ModelEntry & { key: Uint8Array }>, range: KeyRange): string[] {
  const entries = [...model.values()].sort((a, b) => compareBytes(a.key, b.key));
  if (range.reverse) entries.reverse();
  const out: string[] = [];
  for (const e of entries) {
    if (range.gte !== undefined && compareBytes(e.key, range.gte) < 0) continue;
    if (range.gt !== undefined && compareBytes(e.key, range.gt) <= 0) continue;
    if (range.lte !== undefined && compareBytes(e.key, range.lte) > 0) continue;
    if (range.lt !== undefined && compareBytes(e.key, range.lt) >= 0) continue;
    if (range.limit !== undefined && out.length >= range.limit) break;
    out.push(`${hex(e.key)}=${hex(e.value)}/${e.meta === undefined ? '-' : hex(e.meta)}`);
  }
  return out;
}

const options: Partial<LsmOptions> = {
  memtableBytes: 1024,
  blockBytes: 256,
  targetFileBytes: 1024,
  level1Bytes: 2048,
  levelSizeMultiplier: 2,
  level0CompactionFiles: 2,
  level0StopWritesFiles: 4,
  blockCacheBytes: 4096,
  rowCacheBytes: 2048,
};

test('LSM engine behaves like a Map under random operation sequences', async () => {
  const totals = { flushes: 0, compactions: 0, trivialMoves: 0 };
  const tally = (db: LsmEngine): void => {
    const s = db.stats();
    totals.flushes += s.flushes as number;
    totals.compactions += s.compactions as number;
    totals.trivialMoves += s.trivialMoves as number;
  };
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 150, size: 'max' }), async (ops) => {
      const fs = new MemoryFileSystem();
      const env = { fs, clock: new RealClock(), log: silentLogger };
      let db: LsmEngine = await openLsm('/db', options, env);
      const model = new Map<string, ModelEntry & { key: Uint8Array }>();
      const applyModel = (op: BatchOp): void => {
        if (op.type === 'put') model.set(hex(op.key), { key: op.key, value: op.value, meta: op.meta });
        else model.delete(hex(op.key));
      };
      try {
        for (const op of ops) {
          switch (op.t) {
            case 'put':
              await db.put(op.key, op.value, op.meta);
              applyModel(op.meta === undefined ? { type: 'put', key: op.key, value: op.value } : { type: 'put', key: op.key, value: op.value, meta: op.meta });
              break;
            case 'delete':
              await db.delete(op.key);
              applyModel({ type: 'delete', key: op.key });
              break;
            case 'batch':
              await db.write(op.ops);
              op.ops.forEach(applyModel);
              break;
            case 'get': {
              const got = await db.get(op.key);
              const want = model.get(hex(op.key));
              assert.equal(got === undefined ? undefined : `${hex(got.value)}/${got.meta === undefined ? '-' : hex(got.meta)}`,
                want === undefined ? undefined : `${hex(want.value)}/${want.meta === undefined ? '-' : hex(want.meta)}`);
              break;
            }
            case 'iterate': {
              const seen: string[] = [];
              for await (const e of db.iterate(op.range)) seen.push(`${hex(e.key)}=${hex(e.value)}/${e.meta === undefined ? '-' : hex(e.meta)}`);
              assert.deepEqual(seen, modelScan(model, op.range));
              break;
            }
            case 'reopen':
              tally(db);
              await db.close();
              db = await openLsm('/db', options, env);
              break;
            case 'compact':
              await db.compact();
              break;
          }
        }
        // Everything, in both directions, at the end.
        const all: string[] = [];
        for await (const e of db.iterate()) all.push(`${hex(e.key)}=${hex(e.value)}/${e.meta === undefined ? '-' : hex(e.meta)}`);
        assert.deepEqual(all, modelScan(model, {}));
      } finally {
        tally(db);
        await db.close();
      }
    }),
    { numRuns: Number(process.env.RINGKV_PROPERTY_RUNS ?? 150) },
  );
  // The sequences must have exercised the disk paths, not just the memtable.
  assert.ok(totals.flushes > 300 && totals.compactions > 50, JSON.stringify(totals));
});
