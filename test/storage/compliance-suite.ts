/**
 * One compliance suite for every Engine (the abstract-level idea): the
 * memory engine and the LSM engine on both file systems run the same cases.
 * `supports.reopen` gates the durability cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClosedError, fromUtf8, utf8 } from '../../src/core/index.ts';
import type { Engine, EngineEntry, KeyRange } from '../../src/storage/index.ts';

export interface EngineHarness {
  name: string;
  create(): Promise<Engine>;
  /** Closes `engine` and opens the same data again (durable engines only). */
  reopen?(engine: Engine): Promise<Engine>;
  cleanup?(): Promise<void>;
}

async function collect(engine: Engine, range?: KeyRange): Promise<string[]> {
  const out: string[] = [];
  for await (const e of engine.iterate(range)) out.push(`${fromUtf8(e.key)}=${fromUtf8(e.value)}`);
  return out;
}

function text(entry: EngineEntry | undefined): string | undefined {
  return entry === undefined ? undefined : fromUtf8(entry.value);
}

export function engineComplianceSuite(h: EngineHarness): void {
  const withEngine = (name: string, fn: (engine: Engine) => Promise<Engine | void>): void => {
    test(`${h.name}: ${name}`, async () => {
      let engine = await h.create();
      try {
        engine = (await fn(engine)) ?? engine;
      } finally {
        await engine.close();
        await h.cleanup?.();
      }
    });
  };

  withEngine('get of a missing key is undefined', async (db) => {
    assert.equal(await db.get(utf8('nope')), undefined);
  });

  withEngine('put then get returns value and metadata; meta is undefined when none was written', async (db) => {
    await db.put(utf8('a'), utf8('1'), utf8('m1'));
    await db.put(utf8('b'), utf8('2'));
    const a = await db.get(utf8('a'));
    assert.equal(text(a), '1');
    assert.equal(fromUtf8(a?.meta ?? new Uint8Array()), 'm1');
    assert.equal(fromUtf8(a?.key ?? new Uint8Array()), 'a');
    const b = await db.get(utf8('b'));
    assert.equal(text(b), '2');
    assert.equal(b?.meta, undefined);
  });

  withEngine('overwrite keeps the newest value and delete removes it', async (db) => {
    await db.put(utf8('k'), utf8('old'));
    await db.put(utf8('k'), utf8('new'));
    assert.equal(text(await db.get(utf8('k'))), 'new');
    await db.delete(utf8('k'));
    assert.equal(await db.get(utf8('k')), undefined);
    await db.delete(utf8('never-written'));
    assert.deepEqual(await collect(db), []);
  });

  withEngine('empty values and binary keys are stored exactly, ordered by bytes', async (db) => {
    const keys = [Uint8Array.of(0xff), Uint8Array.of(0), Uint8Array.of(0, 0), Uint8Array.of(0x7f, 0x80), Uint8Array.of(0x80)];
    for (const k of keys) await db.put(k, new Uint8Array(0));
    const seen: string[] = [];
    for await (const e of db.iterate()) {
      seen.push(Buffer.from(e.key).toString('hex'));
      assert.equal(e.value.length, 0);
    }
    assert.deepEqual(seen, ['00', '0000', '7f80', '80', 'ff']);
  });

  withEngine('a batch applies all of its operations, later ones winning', async (db) => {
    await db.put(utf8('x'), utf8('0'));
    await db.write([
      { type: 'put', key: utf8('a'), value: utf8('1') },
      { type: 'delete', key: utf8('x') },
      { type: 'put', key: utf8('b'), value: utf8('2'), meta: utf8('m') },
      { type: 'put', key: utf8('a'), value: utf8('3') },
    ]);
    assert.deepEqual(await collect(db), ['a=3', 'b=2']);
    assert.equal(fromUtf8((await db.get(utf8('b')))?.meta ?? new Uint8Array()), 'm');
  });

  withEngine('stored bytes are copies: mutating inputs or results changes nothing', async (db) => {
    const key = utf8('key');
    const value = utf8('value');
    await db.put(key, value);
    key[0] = 0x4b;
    value[0] = 0x56;
    const got = await db.get(utf8('key'));
    assert.equal(text(got), 'value');
    got?.value.fill(0);
    assert.equal(text(await db.get(utf8('key'))), 'value');
  });

  withEngine('iterate honours gte/gt/lte/lt, reverse and limit', async (db) => {
    for (const k of ['a', 'b', 'c', 'd', 'e']) await db.put(utf8(k), utf8(k.toUpperCase()));
    assert.deepEqual(await collect(db), ['a=A', 'b=B', 'c=C', 'd=D', 'e=E']);
    assert.deepEqual(await collect(db, { gte: utf8('b'), lt: utf8('d') }), ['b=B', 'c=C']);
    assert.deepEqual(await collect(db, { gt: utf8('b'), lte: utf8('d') }), ['c=C', 'd=D']);
    assert.deepEqual(await collect(db, { reverse: true }), ['e=E', 'd=D', 'c=C', 'b=B', 'a=A']);
    assert.deepEqual(await collect(db, { reverse: true, gt: utf8('a'), lt: utf8('e') }), ['d=D', 'c=C', 'b=B']);
    assert.deepEqual(await collect(db, { reverse: true, gte: utf8('bb'), lte: utf8('dd') }), ['d=D', 'c=C']);
    assert.deepEqual(await collect(db, { limit: 2 }), ['a=A', 'b=B']);
    assert.deepEqual(await collect(db, { limit: 0 }), []);
    assert.deepEqual(await collect(db, { reverse: true, limit: 1 }), ['e=E']);
    assert.deepEqual(await collect(db, { gte: utf8('x') }), []);
    assert.deepEqual(await collect(db, { gt: utf8('c'), lt: utf8('c') }), []);
  });

  withEngine('iterate is a snapshot as of the call', async (db) => {
    await db.put(utf8('a'), utf8('1'));
    await db.put(utf8('b'), utf8('2'));
    const it = db.iterate();
    await db.put(utf8('a'), utf8('changed'));
    await db.delete(utf8('b'));
    await db.put(utf8('c'), utf8('3'));
    const seen: string[] = [];
    for await (const e of it) seen.push(`${fromUtf8(e.key)}=${fromUtf8(e.value)}`);
    assert.deepEqual(seen, ['a=1', 'b=2']);
    assert.deepEqual(await collect(db), ['a=changed', 'c=3']);
  });

  withEngine('stats report an approximate key count', async (db) => {
    for (let i = 0; i < 10; i++) await db.put(utf8(`k${i}`), utf8('v'));
    const stats = db.stats();
    assert.equal(typeof stats.approximateKeys, 'number');
    assert.ok(stats.approximateKeys >= 10 && stats.approximateKeys <= 20, `approximateKeys ${stats.approximateKeys}`);
  });

  withEngine('compact keeps every live entry and drops deleted ones', async (db) => {
    for (let i = 0; i < 200; i++) await db.put(utf8(`k${String(i).padStart(3, '0')}`), utf8(`v${i}`));
    for (let i = 0; i < 200; i += 2) await db.delete(utf8(`k${String(i).padStart(3, '0')}`));
    await db.compact();
    const all = await collect(db);
    assert.equal(all.length, 100);
    assert.equal(all[0], 'k001=v1');
    assert.equal(text(await db.get(utf8('k199'))), 'v199');
    assert.equal(await db.get(utf8('k198')), undefined);
  });

  withEngine('getNow and getNowView, where the engine has them, answer what get answers, before and after compaction', async (db) => {
    for (let i = 0; i < 300; i++) await db.put(utf8(`k${i}`), utf8(`v${i}`), i % 3 === 0 ? utf8(`m${i}`) : undefined);
    for (let i = 0; i < 300; i += 5) await db.delete(utf8(`k${i}`));
    const show = (e: EngineEntry | undefined): string | undefined =>
      e === undefined ? undefined : `${fromUtf8(e.key)}=${fromUtf8(e.value)}/${e.meta === undefined ? '-' : fromUtf8(e.meta)}`;
    const check = async (): Promise<void> => {
      // Twice: the second read of a key may come from a cache the first one filled.
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < 310; i++) {
          const want = show(await db.get(utf8(`k${i}`)));
          if (db.getNow !== undefined) {
            const key = utf8(`k${i}`);
            const got = show(db.getNow(key));
            // The engine keeps nothing of the key it was given.
            key.fill(0);
            assert.equal(got, want);
            assert.equal(show(db.getNow(utf8(`k${i}`))), want);
          }
          // A view is read before the next engine call.
          if (db.getNowView !== undefined) assert.equal(show(db.getNowView(utf8(`k${i}`))), want);
        }
      }
    };
    await check();
    await db.compact();
    await check();
  });

  test(`${h.name}: operations after close fail with ClosedError`, async () => {
    const db = await h.create();
    await db.close();
    await assert.rejects(db.get(utf8('a')), ClosedError);
    await assert.rejects(db.put(utf8('a'), utf8('b')), ClosedError);
    await h.cleanup?.();
  });

  if (h.reopen !== undefined) {
    const reopen = h.reopen;
    withEngine('reopen keeps every entry, metadata and deletion', async (db) => {
      await db.put(utf8('a'), utf8('1'), utf8('meta'));
      await db.put(utf8('b'), utf8('2'));
      await db.delete(utf8('b'));
      await db.write([
        { type: 'put', key: utf8('c'), value: utf8('3') },
        { type: 'put', key: utf8('d'), value: utf8('4') },
      ]);
      const again = await reopen(db);
      assert.deepEqual(await collect(again), ['a=1', 'c=3', 'd=4']);
      assert.equal(fromUtf8((await again.get(utf8('a')))?.meta ?? new Uint8Array()), 'meta');
      return again;
    });
  }
}
