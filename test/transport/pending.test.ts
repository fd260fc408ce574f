/** The pending-request table against a Map model, including id wrap-around. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PendingTable } from '../../src/transport/pending.ts';

interface Entry {
  readonly id: number;
  readonly tag: number;
}

test('pending table: behaves like a Map of id to entry, and never hands out a pending id', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const) }),
    fc.record({ kind: fc.constant('take' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('takeUnknown' as const), id: fc.integer({ min: 1, max: 2 ** 32 - 1 }) }),
    fc.record({ kind: fc.constant('sweep' as const), modulo: fc.integer({ min: 2, max: 5 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.array(op, { maxLength: 400 }), (firstId, ops) => {
      const table = new PendingTable<Entry>(firstId);
      const model = new Map<number, Entry>();
      let tag = 0;
      for (const o of ops) {
        if (o.kind === 'add') {
          const id = table.allocateId();
          assert.ok(id >= 1 && id <= 2 ** 32 - 1);
          assert.ok(!model.has(id), `id ${id} is still pending`);
          const entry = { id, tag: tag++ };
          table.add(entry);
          model.set(id, entry);
        } else if (o.kind === 'take') {
          const ids = [...model.keys()];
          if (ids.length === 0) continue;
          const id = ids[o.pick % ids.length] as number;
          assert.equal(table.take(id), model.get(id));
          model.delete(id);
          assert.equal(table.take(id), undefined, 'a second take of the same id must miss');
        } else if (o.kind === 'takeUnknown') {
          if (model.has(o.id)) continue;
          assert.equal(table.take(o.id), undefined);
        } else {
          const removed = table.removeWhere((e) => e.tag % o.modulo === 0);
          const expected = [...model.values()].filter((e) => e.tag % o.modulo === 0);
          assert.deepEqual(new Set(removed), new Set(expected));
          for (const e of expected) model.delete(e.id);
        }
        assert.equal(table.size, model.size);
      }
      const seen: Entry[] = [];
      table.forEach((e) => seen.push(e));
      assert.deepEqual(new Set(seen), new Set(model.values()));
    }),
    { numRuns: 200 },
  );
});

test('pending table: ids wrap from 2^32 - 1 to 1, skipping 0', () => {
  const table = new PendingTable<Entry>(2 ** 32 - 2);
  const ids = [table.allocateId(), table.allocateId(), table.allocateId()];
  assert.deepEqual(ids, [2 ** 32 - 2, 2 ** 32 - 1, 1]);
});

test('pending table: a late reply for an id whose slot now holds a newer request misses', () => {
  const table = new PendingTable<Entry>();
  const first = table.allocateId();
  table.add({ id: first, tag: 0 });
  assert.ok(table.take(first));
  // 64 slots: id first + 64 lands in the same slot.
  let id = 0;
  for (let i = 0; i < 64; i++) id = table.allocateId();
  table.add({ id, tag: 1 });
  assert.equal(id & 63, first & 63);
  assert.equal(table.take(first), undefined);
  assert.equal(table.take(id)?.tag, 1);
});

test('pending table: grows past its first capacity and keeps every entry reachable', () => {
  const table = new PendingTable<Entry>();
  const ids: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    const id = table.allocateId();
    table.add({ id, tag: i });
    ids.push(id);
  }
  assert.equal(table.size, 5_000);
  ids.forEach((id, i) => assert.equal(table.take(id)?.tag, i));
  assert.equal(table.size, 0);
});
