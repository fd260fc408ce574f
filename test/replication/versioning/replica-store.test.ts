import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConflictError, CorruptionError, InvalidArgumentError, MemoryFileSystem, RealClock, VirtualClock, fromUtf8, silentLogger, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine, openLsm, type Engine } from '../../../src/storage/index.ts';
import {
  ReplicaStore,
  decodeObject,
  emptyClock,
  encodeObject,
  isNotAnIntegerError,
  maxKeyBytes,
  mergedCounterValue,
  storageKey,
  slotOf,
  type StoredObject,
  type WriteContext,
} from '../../../src/replication/index.ts';

const day = 24 * 60 * 60 * 1000;
const values = (o: StoredObject | undefined): string[] => (o?.versions ?? []).filter((v) => v.kind === 'value').map((v) => fromUtf8(v.value)).sort();
const kinds = (o: StoredObject | undefined): string[] => (o?.versions ?? []).map((v) => v.kind).sort();

interface Fixture {
  engine: Engine;
  reopen?: () => Promise<Engine>;
}

const engines: Array<[string, () => Promise<Fixture>]> = [
  ['MemoryEngine', async () => ({ engine: new MemoryEngine() })],
  [
    'LsmEngine',
    async () => {
      const fs = new MemoryFileSystem();
      const env = { fs, clock: new RealClock(), log: silentLogger };
      const engine = await openLsm('/db', { sync: 'always', memtableBytes: 64 * 1024 }, env);
      return { engine, reopen: () => openLsm('/db', { sync: 'always', memtableBytes: 64 * 1024 }, env) };
    },
  ],
];

for (const [name, make] of engines) {
  describe(`ReplicaStore over ${name}`, () => {
    let fixture: Fixture;
    let clock: VirtualClock;
    let store: ReplicaStore;
    const k = utf8('user:1');

    before(async () => {
      fixture = await make();
    });
    after(async () => {
      await fixture.engine.close();
    });

    const fresh = (options: { maxSiblings?: number; nodeId?: string; engine?: Engine } = {}): ReplicaStore => {
      clock = new VirtualClock();
      store = new ReplicaStore({ engine: options.engine ?? new MemoryEngine(), clock, nodeId: options.nodeId ?? 'n1', maxSiblings: options.maxSiblings ?? 64, tombstoneGraceMs: day });
      return store;
    };

    it('a write outcome carries the bytes it stored, which are its object encoded (sent to peers as they are)', async () => {
      fresh({ engine: fixture.engine });
      const key = utf8('encoded:1');
      const blind = await store.coordinatePut(key, utf8('a'), null);
      await blind.durable;
      const sibling = await store.coordinatePut(key, utf8('b'), emptyClock);
      await sibling.durable;
      assert.equal(sibling.object.versions.length, 2);
      // The synchronous overwrite path where the engine can answer at once (LSM), else the general one.
      const now = store.coordinatePutNow(key, utf8('c'), null, { overwrite: true });
      const overwrite = typeof now === 'object' ? now : await store.coordinatePut(key, utf8('c'), null, { overwrite: true });
      await overwrite.durable;
      for (const out of [blind, sibling, overwrite]) {
        assert.ok(out.encoded !== undefined);
        assert.deepEqual(out.encoded, encodeObject(out.object));
      }
      const stored = (await fixture.engine.get(storageKey(key)))?.value;
      assert.ok(stored !== undefined && overwrite.encoded !== undefined);
      assert.ok(Buffer.from(stored).equals(overwrite.encoded));
    });

    it('apply stores the incoming bytes as they are when they are the merge result, and the merge encoded otherwise', async () => {
      const handed: Uint8Array[] = [];
      // Records what the store hands the engine, to tell the peer's buffer from an equal re-encoding.
      const engine = new MemoryEngine();
      const put = engine.put.bind(engine);
      engine.put = (k, v, meta) => {
        handed.push(v);
        return put(k, v, meta);
      };
      fresh({ engine });
      const key = utf8('encoded:2');
      const peer = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'n2', tombstoneGraceMs: day });
      // A newer version from a peer: the merge is the incoming object, stored as the peer's bytes.
      const first = await peer.coordinatePut(key, utf8('p1'), null);
      const firstBytes = encodeObject(first.object);
      await store.apply(key, decodeObject(firstBytes), firstBytes);
      assert.equal(handed.at(-1), firstBytes);
      // A concurrent version here, then the peer's next one: siblings, so the merge is encoded here.
      await (await store.coordinatePut(key, utf8('local'), emptyClock)).durable;
      const second = await peer.coordinatePut(key, utf8('p2'), first.context);
      const secondBytes = encodeObject(second.object);
      const merged = await store.apply(key, decodeObject(secondBytes), secondBytes);
      assert.deepEqual(values(merged), ['local', 'p2']);
      assert.notEqual(handed.at(-1), secondBytes);
      assert.deepEqual(handed.at(-1), encodeObject(merged));
      assert.deepEqual(values(await store.read(key)), ['local', 'p2']);
      await engine.close();
    });

    it('stores a value under (slot, key) and reads it back', async () => {
      fresh({ engine: fixture.engine });
      // Reads show durable writes only, and a write resolves once handed over: await its durability.
      await (await store.coordinatePut(k, utf8('v1'), null)).durable;
      assert.deepEqual(values(await store.read(k)), ['v1']);
      const raw = await fixture.engine.get(storageKey(k));
      assert.ok(raw !== undefined);
      assert.equal(raw.key.length, 3 + k.length);
      assert.equal((raw.key[1] as number) * 256 + (raw.key[2] as number), slotOf(k));
      assert.equal(await store.read(utf8('absent')), undefined);
    });

    it('a write with the read context supersedes; a blind write becomes a sibling', async () => {
      fresh({ engine: fixture.engine });
      const key = utf8('sib');
      await store.coordinatePut(key, utf8('a'), null);
      // A write resolves once handed to the engine; reads show it once it is durable.
      await (await store.coordinatePut(key, utf8('b'), null)).durable;
      assert.deepEqual(values(await store.read(key)), ['a', 'b']);
      const seen = (await store.read(key))?.context ?? emptyClock;
      const out = await store.coordinatePut(key, utf8('c'), seen);
      await out.durable;
      assert.deepEqual(values(out.object), ['c']);
      assert.deepEqual(values(await store.read(key)), ['c']);
    });

    it('accepts a key of exactly maxKeyBytes (the storage key then fills the engine limit)', async () => {
      fresh({ engine: fixture.engine });
      const big = new Uint8Array(maxKeyBytes).fill(0x61);
      await (await store.coordinatePut(big, utf8('v'), null)).durable;
      assert.deepEqual(values(await store.read(big)), ['v']);
    });

    it('survives reopening the engine with every version intact', async (t) => {
      if (fixture.reopen === undefined) return t.diagnostic('memory engine: nothing to reopen');
      fresh({ engine: fixture.engine });
      const key = utf8('durable');
      await (await store.coordinatePut(key, utf8('x'), null)).durable;
      await (await store.coordinateIncr(utf8('durable-counter'), 41n)).durable;
      await (await store.coordinateIncr(utf8('durable-counter'), 1n)).durable;
      await fixture.engine.close();
      fixture.engine = await fixture.reopen();
      const again = new ReplicaStore({ engine: fixture.engine, clock, nodeId: 'n1' });
      assert.deepEqual(values(await again.read(key)), ['x']);
      assert.equal(mergedCounterValue((await again.read(utf8('durable-counter')))?.versions ?? []), 42n);
    });
  });
}

for (const [engineName, engineOf] of [
  ['MemoryEngine', async (): Promise<Engine> => new MemoryEngine()],
  ['LsmEngine', async (): Promise<Engine> => openLsm('/db', { sync: 'none' }, { fs: new MemoryFileSystem(), clock: new RealClock(), log: silentLogger })],
] as const) describe(`ReplicaStore semantics over ${engineName}`, () => {
  const opened: Engine[] = [];
  after(async () => {
    for (const e of opened) await e.close();
  });
  const make = async (nodeId = 'n1', maxSiblings = 64): Promise<{ store: ReplicaStore; clock: VirtualClock; engine: Engine }> => {
    const clock = new VirtualClock();
    const engine = await engineOf();
    opened.push(engine);
    return { store: new ReplicaStore({ engine, clock, nodeId, maxSiblings, tombstoneGraceMs: day }), clock, engine };
  };
  const k = utf8('k');

  it('refuses a write past the sibling limit with an error that says how to resolve, but replication merges never refuse', async () => {
    const { store } = await make('n1', 2);
    await store.coordinatePut(k, utf8('a'), null);
    await store.coordinatePut(k, utf8('b'), null);
    await assert.rejects(store.coordinatePut(k, utf8('c'), null), (e: unknown) => e instanceof ConflictError && /limit is 2; read the key and write with the context/.test(e.message));
    const other = (await make('n2', 2)).store;
    await other.coordinatePut(k, utf8('z'), null);
    const merged = await store.apply(k, (await other.readRaw(k)) as StoredObject);
    assert.deepEqual(values(merged), ['a', 'b', 'z']);
    assert.equal(store.stats().siblingLimitRejections, 1);
    // Resolving with the context is always possible.
    const out = await store.coordinatePut(k, utf8('r'), merged.context);
    assert.deepEqual(values(out.object), ['r']);
  });

  it('apply is idempotent and order-independent across replicas', async () => {
    const a = (await make('a')).store;
    const b = (await make('b')).store;
    await a.coordinatePut(k, utf8('from-a'), null);
    await b.coordinatePut(k, utf8('from-b'), null);
    const oa = (await a.readRaw(k)) as StoredObject;
    const ob = (await b.readRaw(k)) as StoredObject;
    await a.apply(k, ob);
    await a.apply(k, ob);
    await b.apply(k, oa);
    assert.deepEqual(await a.readRaw(k), await b.readRaw(k));
    assert.equal(a.stats().noopMerges, 1);
    assert.deepEqual(values(await a.read(k)), ['from-a', 'from-b']);
  });

  it('a delete is a tombstone that a stale replica cannot undo, purged only after the grace period', async () => {
    const { store, clock } = await make();
    const stale = (await make('n2')).store;
    await store.coordinatePut(k, utf8('v'), null);
    await stale.apply(k, (await store.readRaw(k)) as StoredObject);
    await store.coordinateDelete(k, null);
    assert.deepEqual(kinds(await store.read(k)), ['tombstone']);
    await store.apply(k, (await stale.readRaw(k)) as StoredObject);
    assert.deepEqual(kinds(await store.read(k)), ['tombstone'], 'the stale value did not come back');
    await clock.advance(day - 1);
    assert.equal((await store.purge()).versionsDropped, 0);
    await clock.advance(2);
    const purged = await store.purge();
    assert.deepEqual(purged, { versionsDropped: 1, keysRemoved: 1, keysScanned: 1 });
    assert.equal(await store.readRaw(k), undefined);
  });

  it('expired versions read as absent at once and are purged after the grace period', async () => {
    const { store, clock } = await make();
    const at = clock.wallMs() + 1000;
    await store.coordinatePut(k, utf8('short'), null, { expiresAtMs: at });
    assert.deepEqual(values(await store.read(k)), ['short']);
    await clock.advance(1000);
    assert.deepEqual(values(await store.read(k)), []);
    assert.deepEqual(values(await store.readRaw(k)), ['short'], 'kept until the grace period ends');
    await clock.advance(day);
    assert.equal((await store.purge()).keysRemoved, 1);
  });

  it('dots are never reused: a context from before a purge cannot supersede a later write', async () => {
    const { store, clock } = await make();
    await store.coordinatePut(k, utf8('old'), null);
    const oldContext = ((await store.readRaw(k)) as StoredObject).context;
    await store.coordinateDelete(k, null);
    await clock.advance(2 * day);
    await store.purge();
    await store.coordinatePut(k, utf8('new'), null);
    const out = await store.coordinatePut(k, utf8('late'), oldContext);
    assert.deepEqual(values(out.object), ['late', 'new']);
  });

  it('incr converts an integer value, keeps its expiry, and counts from 0 after the counter expires', async () => {
    const { store, clock } = await make();
    const exp = clock.wallMs() + 5000;
    await store.coordinatePut(k, utf8('10'), null, { expiresAtMs: exp });
    const r = await store.coordinateIncr(k, 5n);
    assert.equal(r.value, 15n);
    assert.equal(r.written[0]?.expiresAtMs, exp);
    assert.equal(r.object.versions.length, 1);
    const r2 = await store.coordinateIncr(k, -20n, { expiresAtMs: null });
    assert.equal(r2.value, -5n);
    assert.equal(r2.written[0]?.expiresAtMs, null);
    await store.coordinateIncr(k, 0n, { expiresAtMs: clock.wallMs() + 10 });
    await clock.advance(10);
    assert.equal((await store.coordinateIncr(k, 1n)).value, 1n);
  });

  it('a counter deleted and incremented again restarts at 0; an increment concurrent with the delete is kept (add-wins)', async () => {
    const a = (await make('a')).store;
    const b = (await make('b')).store;
    await a.coordinateIncr(k, 5n);
    await b.apply(k, (await a.readRaw(k)) as StoredObject);
    // On b: delete, then count again from 0. Concurrently on a: one more increment of the old counter.
    await b.coordinateDelete(k, null);
    assert.equal((await b.coordinateIncr(k, 1n)).value, 1n);
    await a.coordinateIncr(k, 2n);
    const merged = await a.apply(k, (await b.readRaw(k)) as StoredObject);
    await b.apply(k, merged);
    for (const s of [a, b]) {
      const live = ((await s.read(k)) as StoredObject).versions.filter((v) => v.kind === 'counter');
      assert.equal(mergedCounterValue(live), 8n, 'the old state a built on (5 + 2) plus b\'s fresh lane (1)');
    }
    assert.equal((await a.coordinateIncr(k, 0n)).value, 8n);
  });

  it('incr refuses a value that is not an integer, and writes nothing', async () => {
    const { store } = await make();
    await store.coordinatePut(k, utf8('abc'), null);
    await assert.rejects(store.coordinateIncr(k, 1n), (e: unknown) => isNotAnIntegerError(e));
    assert.deepEqual(values(await store.read(k)), ['abc']);
  });

  it('concurrent read-modify-writes on one key are serialised (no lost increment)', async () => {
    const { store } = await make();
    await Promise.all(Array.from({ length: 200 }, () => store.coordinateIncr(k, 1n)));
    assert.equal(mergedCounterValue(((await store.read(k)) as StoredObject).versions), 200n);
  });

  it('touch rewrites every live version with the new expiry and keeps the newest one newest', async () => {
    const { store, clock } = await make();
    await store.coordinatePut(k, utf8('older'), null);
    await clock.advance(5);
    await store.coordinatePut(k, utf8('newer'), null);
    const out = await store.coordinateTouch(k, clock.wallMs() + 100, null);
    assert.ok(out !== undefined);
    const byTime = [...out.object.versions].sort((a, b) => a.timestampMs - b.timestampMs);
    assert.deepEqual(byTime.map((v) => fromUtf8(v.value)), ['older', 'newer']);
    assert.ok(out.object.versions.every((v) => v.expiresAtMs === clock.wallMs() + 100));
    assert.equal(await store.coordinateTouch(utf8('nothing'), null, null), undefined);
  });

  it('touch with a context rewrites only the versions that context saw, without duplicating the others', async () => {
    const { store, clock } = await make();
    await store.coordinatePut(k, utf8('seen'), null);
    const context = ((await store.readRaw(k)) as StoredObject).context;
    await store.coordinatePut(k, utf8('unseen'), null);
    const out = await store.coordinateTouch(k, clock.wallMs() + 50, context);
    assert.ok(out !== undefined);
    const byValue = new Map(out.object.versions.map((v) => [fromUtf8(v.value), v.expiresAtMs]));
    assert.equal(out.object.versions.length, 2);
    assert.equal(byValue.get('seen'), clock.wallMs() + 50);
    assert.equal(byValue.get('unseen'), null);
  });

  it('validates key sizes with a clear message', async () => {
    const { store } = await make();
    await assert.rejects(store.coordinatePut(new Uint8Array(maxKeyBytes + 1), utf8('v'), null), (e: unknown) => e instanceof InvalidArgumentError && /is 65534 bytes: the limit is 65533/.test(e.message));
  });

  it('names the key when its stored bytes are corrupt', async () => {
    const { store, engine } = await make();
    await engine.put(storageKey(k), Uint8Array.from([1, 200]));
    await assert.rejects(store.read(k), (e: unknown) => e instanceof CorruptionError && /Key "k" on n1/.test(e.message));
  });

  it('scans in (partition, key) order, live only unless asked, in pages', async () => {
    const { store, clock } = await make();
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    for (const key of keys) await store.coordinatePut(utf8(key), utf8('v'), null);
    await store.coordinateDelete(utf8('key-3'), null);
    const seen4 = ((await store.readRaw(utf8('key-4'))) as StoredObject).context;
    await store.coordinatePut(utf8('key-4'), utf8('v'), seen4, { expiresAtMs: clock.wallMs() });
    const seen: Array<[number, string]> = [];
    let after: Uint8Array | undefined;
    for (;;) {
      const page = await store.scanLocal({ limit: 7, ...(after ? { after } : {}) });
      for (const item of page.items) seen.push([item.partition, fromUtf8(item.key)]);
      if (page.next === null) break;
      after = page.next;
    }
    const expected = keys.filter((x) => x !== 'key-3' && x !== 'key-4').map((x): [number, string] => [slotOf(utf8(x)), x]);
    expected.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
    assert.deepEqual(seen, expected);
    const all = await store.scanLocal({ limit: 100, includeDead: true });
    assert.equal(all.items.length, 40);
    const one = slotOf(utf8('key-7'));
    const single = await store.scanLocal({ fromPartition: one, toPartition: one + 1, limit: 100 });
    assert.ok(single.items.every((i) => i.partition === one) && single.items.some((i) => fromUtf8(i.key) === 'key-7'));
  });

  it('startPurging purges on the clock until stopped', async () => {
    const { store, clock } = await make();
    await store.coordinatePut(k, utf8('v'), null, { expiresAtMs: clock.wallMs() + 10 });
    const results: number[] = [];
    const purging = store.startPurging(day, (r) => results.push(r?.keysRemoved ?? -1));
    await clock.advance(day);
    assert.deepEqual(results, [0], 'expired, but still within the grace period');
    await clock.advance(day);
    assert.deepEqual(results, [0, 1]);
    assert.equal(await store.readRaw(k), undefined);
    purging.stop();
    await clock.advance(5 * day);
    assert.equal(results.length, 2);
  });

  it('clear removes everything', async () => {
    const { store } = await make();
    for (let i = 0; i < 1100; i++) await store.coordinatePut(utf8(`c${i}`), utf8('v'), null);
    assert.equal(await store.clear(), 1100);
    assert.deepEqual((await store.scanLocal({ limit: 10, includeDead: true })).items, []);
    assert.equal(await store.read(utf8('c7')), undefined);
  });
});

describe('replicas exchanging objects in any order', () => {
  it('lose no write that no later write saw, and converge to one state', async () => {
    const command = fc.oneof(
      fc.record({ op: fc.constant('read' as const), at: fc.nat(2) }),
      fc.record({ op: fc.constant('put' as const), at: fc.nat(2), token: fc.option(fc.nat(), { nil: undefined }) }),
      fc.record({ op: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 30 }), async (commands) => {
        const clock = new VirtualClock();
        const stores = ['r0', 'r1', 'r2'].map((id) => new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: id }));
        const key = utf8('shared');
        const tokens: Array<{ context: WriteContext | null; saw: Set<string> }> = [];
        const written = new Set<string>();
        const superseded = new Set<string>();
        let n = 0;
        for (const c of commands) {
          await clock.advance(1);
          if (c.op === 'read') {
            const o = await (stores[c.at] as ReplicaStore).read(key);
            tokens.push({ context: o?.context ?? [], saw: new Set(values(o)) });
          } else if (c.op === 'put') {
            const token = c.token === undefined || tokens.length === 0 ? undefined : tokens[c.token % tokens.length];
            const value = `v${n++}`;
            const out = await (stores[c.at] as ReplicaStore).coordinatePut(key, utf8(value), token?.context ?? null);
            written.add(value);
            for (const v of token?.saw ?? []) superseded.add(v);
            tokens.push({ context: out.context, saw: new Set([...(token?.saw ?? []), value]) });
          } else {
            const o = await (stores[c.from] as ReplicaStore).readRaw(key);
            if (o !== undefined) await (stores[c.to] as ReplicaStore).apply(key, o);
          }
        }
        for (let round = 0; round < 2; round++) {
          for (const from of stores) {
            const o = await from.readRaw(key);
            if (o !== undefined) for (const to of stores) await to.apply(key, o);
          }
        }
        const finals = await Promise.all(stores.map(async (s) => values(await s.readRaw(key))));
        assert.deepEqual(finals[1], finals[0]);
        assert.deepEqual(finals[2], finals[0]);
        for (const v of written) if (!superseded.has(v)) assert.ok(finals[0]?.includes(v), `${v} was lost`);
      }),
      { numRuns: 200 },
    );
  });
});
