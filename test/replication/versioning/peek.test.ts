/**
 * The GET fast path: peekWinner (the winner read in place from the encoded
 * object) must answer exactly what decoding answers, or say mustDecode; the
 * store's winnerNow (engine only, peek first) must agree with the general
 * read; and the scratch storage keys must be the storage keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, RealClock, VirtualClock, crc16, fromUtf8, silentLogger, utf8 } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { keySlot } from '../../../src/ring/index.ts';
import {
  LocalKv,
  ReplicaStore,
  StorageKeyScratch,
  decodeObject,
  encodeObject,
  makeObject,
  mustDecode,
  peekWinner,
  resolveWinner,
  slotOf,
  storageKey,
  winnerOf,
  wouldWait,
} from '../../../src/replication/index.ts';
import type { StoredObject, Version, Winner } from '../../../src/replication/index.ts';
import { clockArb, nodes, objectArb, versionFor } from './gen.ts';

/** Objects of at most one version, the shape the fast path reads; every kind, with and without expiry. */
const soleArb: fc.Arbitrary<StoredObject> = fc
  .tuple(clockArb, fc.constantFrom(...nodes), fc.integer({ min: 1, max: 12 }), fc.boolean(), fc.option(fc.integer({ min: 1_700_000_099_990, max: 1_700_000_100_100 }), { nil: null }))
  .map(([context, node, counter, none, expiry]): StoredObject => {
    if (none) return makeObject(context, []);
    const v: Version = { ...versionFor(node, counter), expiresAtMs: expiry };
    return makeObject(context, [v]);
  });

const nowArb = fc.integer({ min: 1_700_000_099_990, max: 1_700_000_100_100 });

/** What a decode tells: the winner, or 'corrupt' when decodeObject throws. */
function decoded(bytes: Uint8Array, now: number): Winner | undefined | 'corrupt' {
  let object: StoredObject;
  try {
    object = decodeObject(bytes, true);
  } catch {
    return 'corrupt';
  }
  return winnerOf(object, now);
}

function assertAgrees(bytes: Uint8Array, now: number): void {
  const peeked = peekWinner(bytes, now);
  const expected = decoded(bytes, now);
  if (peeked === mustDecode) return;
  assert.notEqual(expected, 'corrupt', 'peekWinner answered for bytes decodeObject rejects');
  assert.deepEqual(peeked, expected);
}

describe('peekWinner', () => {
  it('answers what winnerOf(decodeObject) answers for objects of one version or none, and only says mustDecode for counters', () => {
    fc.assert(
      fc.property(soleArb, nowArb, (object, now) => {
        const bytes = encodeObject(object);
        const peeked = peekWinner(bytes, now);
        const only = object.versions[0];
        if (only?.kind === 'counter') {
          assert.equal(peeked, mustDecode);
          return;
        }
        assert.notEqual(peeked, mustDecode, 'a plain value, a tombstone or nothing is read in place');
        assert.deepEqual(peeked, winnerOf(decodeObject(bytes, true), now));
        if (peeked !== undefined && peeked.kind === 'value') {
          // A view of the input, not a copy.
          assert.equal(peeked.value.buffer, bytes.buffer);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with the decode or says mustDecode for any object (siblings, counters)', () => {
    fc.assert(
      fc.property(objectArb, nowArb, (object, now) => assertAgrees(encodeObject(object), now)),
      { numRuns: 500 },
    );
  });

  it('never answers for bytes the decode rejects: truncated, extended or with a byte changed', () => {
    fc.assert(
      fc.property(soleArb, nowArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (object, now, at, byte) => {
        const bytes = Buffer.from(encodeObject(object));
        for (let cut = 0; cut < bytes.length; cut++) assertAgrees(bytes.subarray(0, cut), now);
        assertAgrees(Buffer.concat([bytes, Buffer.from([byte])]), now);
        const changed = Buffer.from(bytes);
        changed[at % changed.length] = byte;
        assertAgrees(changed, now);
      }),
      { numRuns: 1000 },
    );
  });

  it('serves expiry exactly: live until the expiry, absent from it on', () => {
    const v: Version = { ...versionFor('a', 2), kind: 'value', value: utf8('x'), expiresAtMs: 1000, deletedAtMs: null };
    const bytes = encodeObject(makeObject([], [v]));
    assert.equal(fromUtf8((peekWinner(bytes, 999) as { value: Uint8Array }).value), 'x');
    assert.equal(peekWinner(bytes, 1000), undefined);
    assert.equal(peekWinner(bytes, 1001), undefined);
  });
});

/** CLUSTER KEYSLOT by Buffer#indexOf, as the ring computed it before short keys were searched by a loop. */
function referenceSlot(key: Uint8Array): number {
  const open = key.indexOf(0x7b);
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) % 16384;
  }
  return crc16(key) % 16384;
}

describe('slotOf', () => {
  it('is CLUSTER KEYSLOT for any key, short (searched by a loop) or long, hash tags included', () => {
    const braces = fc.constantFrom(0x7b, 0x7d, 0x61, 0x62);
    fc.assert(
      fc.property(fc.oneof(fc.array(braces, { maxLength: 80 }).map((b) => Uint8Array.from(b)), fc.uint8Array({ maxLength: 100 })), (key) => {
        assert.equal(slotOf(key), referenceSlot(key));
        assert.equal(slotOf(key), keySlot(key));
      }),
      { numRuns: 2000 },
    );
    assert.equal(slotOf(utf8('{user1000}.following')), slotOf(utf8('{user1000}.followers')));
    assert.equal(slotOf(utf8('foo')), 12182);
  });
});

describe('StorageKeyScratch', () => {
  it('builds the storage key of any key, one at a time', () => {
    const scratch = new StorageKeyScratch();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (key) => {
        assert.deepEqual(Buffer.from(scratch.of(key)), Buffer.from(storageKey(key)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('ReplicaStore.winnerNow over the LSM engine', () => {
  it('answers what the general read answers, for values, siblings, counters, expiry and deletes', async () => {
    const clock = new VirtualClock({ startMs: 1_700_000_000_000 });
    const engine = await openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger });
    const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
    const kv = new LocalKv({ store, clock });
    const keys = ['a', 'b', 'c', 'd'].map(utf8);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              op: fc.constantFrom('set', 'blind', 'ttl', 'incr', 'del', 'advance'),
              key: fc.integer({ min: 0, max: keys.length - 1 }),
              value: fc.string({ maxLength: 6 }),
            }),
            { maxLength: 30 },
          ),
          async (ops) => {
            for (const { op, key: k, value } of ops) {
              const key = keys[k] as Uint8Array;
              if (op === 'set') await kv.put(key, utf8(value), { overwrite: true });
              else if (op === 'blind') await kv.put(key, utf8(value));
              else if (op === 'ttl') await kv.put(key, utf8(value), { overwrite: true, expiresAtMs: clock.wallMs() + 50 });
              else if (op === 'incr') await kv.incrBy(key, 3n).catch(() => undefined);
              else if (op === 'del') await kv.delete(key);
              else await clock.advance(40);
              for (const each of keys) {
                const now = kv.winnerNow(each);
                assert.notEqual(now, wouldWait);
                const general = resolveWinner(await kv.get(each));
                const shown = (w: Winner | undefined): string | undefined => (w === undefined ? undefined : w.kind === 'value' ? `v:${fromUtf8(w.value)}` : `c:${w.count}`);
                assert.equal(shown(now as Winner | undefined), shown(general));
              }
            }
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await engine.close();
    }
  });
});
