/** The typed-array memtable: lookups, order, pinned versions, and recycling a flushed memtable's memory. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, silentLogger } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import { Memtable } from '../../src/storage/memtable.ts';
import { hashKey } from '../../src/storage/sstable.ts';

function set(mem: Memtable, key: Uint8Array, seq: number, value: Uint8Array | undefined, meta?: Uint8Array): void {
  const [h1, h2] = hashKey(key);
  mem.set(key, h1, h2, seq, value, meta);
}

function lookup(mem: Memtable, key: Uint8Array): { deleted: boolean; value: Buffer | undefined; meta: Buffer | undefined } | undefined {
  const [h1, h2] = hashKey(key);
  if (!mem.mayContain(h1, h2)) return undefined;
  const id = mem.find(key, h1);
  if (id < 0) return undefined;
  return { deleted: mem.isDeletion(id), value: mem.value(id), meta: mem.meta(id) };
}

test('memtable agrees with a Map model through growth, overwrites, deletions and metadata', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          key: fc.uint8Array({ minLength: 0, maxLength: 6 }),
          value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
          meta: fc.option(fc.uint8Array({ maxLength: 5 }), { nil: undefined }),
        }),
        { maxLength: 300 },
      ),
      (ops) => {
        const mem = new Memtable(1, 4096);
        const model = new Map<string, { value: Uint8Array | undefined; meta: Uint8Array | undefined }>();
        let seq = 0;
        for (const op of ops) {
          const meta = op.value === undefined ? undefined : op.meta;
          set(mem, op.key, ++seq, op.value, meta);
          model.set(Buffer.from(op.key).toString('hex'), { value: op.value, meta });
        }
        assert.equal(mem.entries, model.size);
        for (const [hex, want] of model) {
          const got = lookup(mem, Buffer.from(hex, 'hex'));
          assert.ok(got !== undefined, `key ${hex} is missing`);
          assert.equal(got.deleted, want.value === undefined);
          if (want.value !== undefined) assert.deepEqual(got.value, Buffer.from(want.value));
          assert.deepEqual(got.meta, want.meta === undefined ? undefined : Buffer.from(want.meta));
        }
        const ids = mem.sortedIds();
        const keys = [...ids].map((id) => mem.key(id).toString('hex'));
        assert.deepEqual(keys, [...model.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'))));
      },
    ),
    { numRuns: 150 },
  );
});

test('a memtable built on a recycled one holds only its own entries; the recycled one reads as empty', () => {
  const old = new Memtable(1, 1 << 20);
  for (let i = 0; i < 5000; i++) set(old, Buffer.from(`old-${i}`), i + 1, Buffer.alloc(100, i & 0xff));
  assert.equal(old.entries, 5000);
  const fresh = new Memtable(2, 1 << 20, old);
  assert.equal(old.entries, 0);
  assert.equal(old.sortedIds().length, 0);
  assert.equal(lookup(old, Buffer.from('old-1')), undefined);
  assert.equal(fresh.entries, 0);
  assert.equal(lookup(fresh, Buffer.from('old-1')), undefined, 'no entry of the recycled memtable leaks into the new one');
  for (let i = 0; i < 6000; i++) set(fresh, Buffer.from(`new-${i}`), i + 1, Buffer.alloc(100, (i * 7) & 0xff));
  for (let i = 0; i < 6000; i += 97) assert.deepEqual(lookup(fresh, Buffer.from(`new-${i}`))?.value, Buffer.alloc(100, (i * 7) & 0xff));
  assert.equal(lookup(fresh, Buffer.from('old-4999')), undefined);
  assert.equal(fresh.sortedIds().length, 6000);
});

test('a scan that pins a memtable across its flush keeps its snapshot while later memtables recycle memory', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { memtableBytes: 64 * 1024 }, { fs, clock: new RealClock(), log: silentLogger });
  const value = (round: number, i: number): Buffer => Buffer.alloc(200, (round * 31 + i) & 0xff);
  const keys = 200;
  for (let i = 0; i < keys; i++) await db.put(Buffer.from(`k${String(i).padStart(4, '0')}`), value(0, i));
  const scan = db.iterate()[Symbol.asyncIterator]();
  const first = await scan.next();
  assert.equal(first.done, false);
  // Many rotations and flushes while the scan is open: flushed memtables get recycled by later ones.
  for (let round = 1; round <= 8; round++) {
    for (let i = 0; i < keys; i++) await db.put(Buffer.from(`k${String(i).padStart(4, '0')}`), value(round, i));
  }
  let seen = 1;
  for (let r = await scan.next(); r.done !== true; r = await scan.next()) {
    const i = Number(r.value.key.toString().slice(1));
    assert.deepEqual(r.value.value, value(0, i), `scan saw a later write or foreign bytes at key ${i}`);
    seen++;
  }
  assert.equal(seen, keys);
  for (let i = 0; i < keys; i++) assert.deepEqual((await db.get(Buffer.from(`k${String(i).padStart(4, '0')}`)))?.value, value(8, i));
  assert.ok((db.stats().flushes as number) >= 4, 'the memtable rotated several times during the scan');
  await db.close();
});

test('the sort in steps orders keys by bytes (shared and short prefixes, zero bytes) and merges with an earlier sort', async () => {
  const key = fc.oneof(
    fc.uint8Array({ maxLength: 6 }),
    fc.uint8Array({ minLength: 1, maxLength: 20 }).map((tail) => Buffer.concat([Buffer.from('key:'), tail])),
    fc.uint8Array({ minLength: 1, maxLength: 3 }).map((tail) => Buffer.concat([Buffer.alloc(3), tail])),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(key, { maxLength: 400 }), fc.array(key, { maxLength: 400 }), async (first, second) => {
      const mem = new Memtable(1, 1 << 20);
      let seq = 0;
      for (const k of first) set(mem, k, ++seq, Buffer.from('v'));
      const firstIds = mem.sortedIds();
      for (const k of second) set(mem, k, ++seq, Buffer.from('w'));
      let pauses = 0;
      const ids = await mem.sortedIdsInSteps(() => (++pauses % 2 === 0 ? Promise.resolve() : undefined));
      const expected = [...new Map([...first, ...second].map((k) => [Buffer.from(k).toString('hex'), Buffer.from(k)])).values()].sort(Buffer.compare);
      assert.deepEqual([...ids].map((id) => mem.key(id)), expected);
      // The array handed out earlier is unchanged (a scan may still hold it).
      const firstExpected = [...new Map(first.map((k) => [Buffer.from(k).toString('hex'), Buffer.from(k)])).values()].sort(Buffer.compare);
      assert.deepEqual([...firstIds].map((id) => mem.key(id)), firstExpected);
      assert.equal(mem.sortedIds(), ids);
    }),
    { numRuns: 60 },
  );
});

test('the sort in steps pauses on a large memtable and matches the one-step sort', async () => {
  const mem = new Memtable(1, 64 << 20);
  const other = new Memtable(2, 64 << 20);
  let x = 7;
  for (let i = 0; i < 30000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const k = Buffer.from(`user${x % 5000}:${i % 97}`);
    set(mem, k, i + 1, Buffer.from('v'));
    set(other, k, i + 1, Buffer.from('v'));
  }
  let pauses = 0;
  const stepped = await mem.sortedIdsInSteps(() => {
    pauses++;
    return Promise.resolve();
  });
  assert.ok(pauses > 1, `the sort paused ${pauses} times`);
  assert.deepEqual([...stepped].map((id) => mem.key(id).toString()), [...other.sortedIds()].map((id) => other.key(id).toString()));
});

/** The memtable's stepped sort of `keys` (duplicates kept once) must equal a plain byte-order sort. */
async function assertSortsInSteps(keys: Buffer[]): Promise<void> {
  const mem = new Memtable(1, 1 << 20);
  let seq = 0;
  for (const k of keys) set(mem, k, ++seq, Buffer.from('v'));
  const ids = await mem.sortedIdsInSteps(() => undefined);
  const expected = [...new Map(keys.map((k) => [k.toString('hex'), k])).values()].sort(Buffer.compare);
  assert.deepEqual([...ids].map((id) => mem.key(id)), expected);
}

test('the sort in steps orders keys that all share a long prefix (the prefix itself, zero bytes and short tails included)', async () => {
  const prefix = fc.constantFrom(Buffer.from('key:00000'), Buffer.alloc(70, 0x61), Buffer.from('\u0000\u0000'));
  const tail = fc.uint8Array({ maxLength: 9 });
  await fc.assert(
    fc.asyncProperty(prefix, fc.array(tail, { minLength: 1, maxLength: 300 }), async (p, tails) => {
      const keys = tails.map((t) => Buffer.concat([p, t]));
      await assertSortsInSteps(keys);
    }),
    { numRuns: 80 },
  );
});

test('the sort in steps orders keys that share bytes in the middle (a node: keyspace byte, slot, "user" then digits) and of mixed lengths', async () => {
  // Few values per position, so keys often tie on the varying positions the sort key picks and differ later.
  const slot = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }));
  const tail = fc.oneof(fc.uint8Array({ maxLength: 12 }), fc.stringMatching(/^[0-9]{0,8}$/).map((d) => Buffer.from(d)));
  const middle = fc.constantFrom(Buffer.from('user'), Buffer.from('use'), Buffer.from(''), Buffer.from('user\u0000'));
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(slot, middle, tail), { minLength: 1, maxLength: 300 }), fc.boolean(), async (parts, variedFirstByte) => {
      const keys = parts.map(([[hi, lo], mid, t], i) => Buffer.concat([Buffer.from([variedFirstByte ? i % 2 : 0, hi, lo]), mid, t]));
      await assertSortsInSteps(keys);
    }),
    { numRuns: 150 },
  );
});

test('an unpinned overwrite that fits is written over the old bytes: memory stays put, the logged bytes grow', () => {
  const mem = new Memtable(1, 1 << 20);
  const key = (i: number): Buffer => Buffer.from(`key-${i}`);
  for (let i = 0; i < 1000; i++) set(mem, key(i), i + 1, Buffer.alloc(100, i & 0xff), Buffer.from([1, 2]));
  const bytes = mem.bytes;
  const logged = mem.logged;
  let seq = 1000;
  for (let round = 1; round <= 20; round++) {
    // Same size, then shorter: both fit where the first value and metadata were.
    for (let i = 0; i < 1000; i++) set(mem, key(i), ++seq, Buffer.alloc(round % 2 === 0 ? 100 : 90, (i + round) & 0xff), Buffer.from([round]));
  }
  assert.equal(mem.bytes, bytes, 'no arena space taken by overwrites that fit');
  assert.ok(mem.logged > logged * 15, 'every overwrite counts as written');
  assert.equal(mem.fill, mem.logged);
  for (let i = 0; i < 1000; i += 37) {
    const got = lookup(mem, key(i));
    assert.deepEqual(got?.value, Buffer.alloc(100, (i + 20) & 0xff));
    assert.deepEqual(got?.meta, Buffer.from([20]));
  }
});

test('an overwrite that does not fit, or a deletion then a value, takes fresh space and reads back whole', () => {
  const mem = new Memtable(1, 1 << 20);
  const k = Buffer.from('k');
  set(mem, k, 1, Buffer.from('short'));
  const before = mem.bytes;
  set(mem, k, 2, Buffer.from('a longer value than before'), Buffer.from('m'));
  assert.ok(mem.bytes > before);
  assert.deepEqual(lookup(mem, k)?.value, Buffer.from('a longer value than before'));
  set(mem, k, 3, undefined, undefined);
  assert.equal(lookup(mem, k)?.deleted, true);
  set(mem, k, 4, Buffer.from('back'));
  assert.deepEqual(lookup(mem, k), { deleted: false, value: Buffer.from('back'), meta: undefined });
  // A deletion with metadata (a tombstone's) fits where a value was.
  set(mem, k, 5, undefined, Buffer.from('tomb'));
  assert.deepEqual(lookup(mem, k), { deleted: true, value: undefined, meta: Buffer.from('tomb') });
});

test('an overwrite whose value is a view of the arena (its own or another key\'s bytes) is copied correctly', () => {
  const mem = new Memtable(1, 1 << 20);
  const a = Buffer.from('a');
  const b = Buffer.from('b');
  set(mem, a, 1, Buffer.from('0123456789'), Buffer.from('ma'));
  set(mem, b, 2, Buffer.from('abcdefghij'), Buffer.from('mb'));
  const ownTail = (lookup(mem, a)?.value as Buffer).subarray(2);
  set(mem, a, 3, ownTail, (lookup(mem, a)?.meta as Buffer));
  assert.deepEqual(lookup(mem, a)?.value, Buffer.from('23456789'));
  assert.deepEqual(lookup(mem, a)?.meta, Buffer.from('ma'));
  set(mem, a, 4, lookup(mem, b)?.value as Buffer, lookup(mem, b)?.meta as Buffer);
  assert.deepEqual(lookup(mem, a)?.value, Buffer.from('abcdefghij'));
  assert.deepEqual(lookup(mem, a)?.meta, Buffer.from('mb'));
  assert.deepEqual(lookup(mem, b)?.value, Buffer.from('abcdefghij'));
});

test('while a scan pins the memtable, an overwrite leaves the bytes it read alone; once unpinned, overwrites go in place again', () => {
  const mem = new Memtable(1, 1 << 20);
  const k = Buffer.from('k');
  set(mem, k, 1, Buffer.from('first-value'));
  mem.pins++;
  const seen = lookup(mem, k)?.value as Buffer;
  set(mem, k, 2, Buffer.from('other-value'));
  assert.deepEqual(seen, Buffer.from('first-value'), 'a pinned reader\'s view is not written over');
  assert.deepEqual(lookup(mem, k)?.value, Buffer.from('other-value'));
  mem.pins--;
  const bytes = mem.bytes;
  const current = lookup(mem, k)?.value as Buffer;
  set(mem, k, 3, Buffer.from('third-value'));
  assert.equal(mem.bytes, bytes);
  assert.deepEqual(current, Buffer.from('third-value'), 'unpinned, the newest bytes are replaced where they lie');
  assert.deepEqual(seen, Buffer.from('first-value'));
});
