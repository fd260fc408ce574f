import { describe, it } from 'node:test';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { InvalidArgumentError, UnavailableError, VirtualClock, fromUtf8, utf8 } from '../../../src/core/index.ts';
import { MemoryEngine } from '../../../src/storage/index.ts';
import {
  LocalKv,
  ReplicaStore,
  decodeContext,
  isFound,
  isIncrOverflowError,
  isNotAnIntegerError,
  maxValueBytes,
  resolveWinner,
  slotCount,
  type KvApi,
  type ValueSibling,
} from '../../../src/replication/index.ts';

function setup(): { kv: KvApi; clock: VirtualClock; store: ReplicaStore } {
  const clock = new VirtualClock();
  const store = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId: 'solo' });
  return { kv: new LocalKv({ store, clock }), clock, store };
}
const winner = async (kv: KvApi, key: string): Promise<string | undefined> => {
  const w = resolveWinner(await kv.get(utf8(key)));
  return w === undefined ? undefined : w.kind === 'value' ? fromUtf8(w.value) : String(w.count);
};
/** RESP's SET: read, then write with the read's context. */
async function set(kv: KvApi, key: string, value: string, expiresAtMs: number | null = null): Promise<void> {
  const { context } = await kv.get(utf8(key));
  await kv.put(utf8(key), utf8(value), { context, expiresAtMs });
}

describe('LocalKv (KvApi, N = 1)', () => {
  it('get of a missing key: no siblings, a usable context', async () => {
    const { kv } = setup();
    const r = await kv.get(utf8('nope'));
    assert.deepEqual(r.siblings, []);
    assert.equal(isFound(r), false);
    await kv.put(utf8('nope'), utf8('now'), { context: r.context });
    assert.equal(await winner(kv, 'nope'), 'now');
  });

  it('blind writes create siblings; a write with the context resolves them', async () => {
    const { kv, clock } = setup();
    await kv.put(utf8('k'), utf8('a'));
    await clock.advance(1);
    await kv.put(utf8('k'), utf8('b'), { context: null });
    const r = await kv.get(utf8('k'));
    assert.deepEqual(r.siblings.map((s) => fromUtf8((s as ValueSibling).value)).sort(), ['a', 'b']);
    assert.equal(await winner(kv, 'k'), 'b', 'the later write wins for RESP');
    const put = await kv.put(utf8('k'), utf8('c'), { context: r.context });
    assert.ok(put.context.length > 0);
    assert.equal((await kv.get(utf8('k'))).siblings.length, 1);
  });

  it('an overwrite put supersedes every sibling without a context; a plain put without one is blind', async () => {
    const { kv, clock } = setup();
    await kv.put(utf8('o'), utf8('a'));
    await clock.advance(1);
    await kv.put(utf8('o'), utf8('b'));
    assert.equal((await kv.get(utf8('o'))).siblings.length, 2);
    await kv.put(utf8('o'), utf8('c'), { overwrite: true });
    const r = await kv.get(utf8('o'));
    assert.deepEqual(r.siblings.map((s) => fromUtf8((s as ValueSibling).value)), ['c']);
  });

  it('the context a write returns supersedes that write only, never a sibling it did not see', async () => {
    const { kv, clock } = setup();
    await kv.put(utf8('w'), utf8('a'));
    await clock.advance(1);
    const b = await kv.put(utf8('w'), utf8('b'));
    assert.ok(decodeContext(b.context).dots !== undefined, 'b is handed back as an exact dot, as folding it would cover a');
    await clock.advance(1);
    await kv.put(utf8('w'), utf8('c'), { context: b.context });
    const values = (await kv.get(utf8('w'))).siblings.map((x) => fromUtf8((x as ValueSibling).value)).sort();
    assert.deepEqual(values, ['a', 'c']);
  });

  it('a chain of writes, each with the context the previous returned, keeps one version and a plain clock', async () => {
    const { kv } = setup();
    let context = (await kv.get(utf8('chain'))).context;
    for (let i = 0; i < 5; i++) context = (await kv.put(utf8('chain'), utf8(`v${i}`), { context })).context;
    assert.equal(decodeContext(context).dots, undefined);
    const r = await kv.get(utf8('chain'));
    assert.deepEqual(r.siblings.map((x) => fromUtf8((x as ValueSibling).value)), ['v4']);
  });

  it('TTL: an expired key reads as absent', async () => {
    const { kv, clock } = setup();
    await set(kv, 't', 'v', clock.wallMs() + 100);
    assert.equal(await winner(kv, 't'), 'v');
    assert.equal((await kv.get(utf8('t'))).siblings[0]?.expiresAtMs, clock.wallMs() + 100);
    await clock.advance(100);
    assert.equal(isFound(await kv.get(utf8('t'))), false);
    await assert.rejects(kv.put(utf8('t'), utf8('v'), { expiresAtMs: Number.NaN }), InvalidArgumentError);
  });

  it('delete leaves nothing visible; a later write is not shadowed by the tombstone', async () => {
    const { kv } = setup();
    await set(kv, 'd', 'v');
    await kv.delete(utf8('d'));
    const r = await kv.get(utf8('d'));
    assert.deepEqual(r.siblings, []);
    assert.equal(await kv.approximateCount(), 0, 'the only replica keeps no tombstone for a fully deleted key');
    await kv.put(utf8('d'), utf8('again'), { context: r.context });
    assert.equal(await winner(kv, 'd'), 'again');
    assert.equal((await kv.get(utf8('d'))).siblings.length, 1);
    await kv.delete(utf8('never-there'));
    assert.equal(await kv.approximateCount(), 1);
  });

  it('a delete that names an old context leaves later versions visible beside the tombstone', async () => {
    const { kv, clock } = setup();
    await set(kv, 'x', 'one');
    const old = (await kv.get(utf8('x'))).context;
    await clock.advance(1);
    await kv.put(utf8('x'), utf8('two'));
    await kv.delete(utf8('x'), { context: old });
    const r = await kv.get(utf8('x'));
    assert.deepEqual(r.siblings.map((s) => s.kind).sort(), ['tombstone', 'value']);
    assert.equal(await winner(kv, 'x'), undefined, 'the tombstone is the newest, so RESP sees no key');
  });

  it('incrBy: creates at 0, converts an integer value, keeps the expiry, refuses non-integers with the Redis message', async () => {
    const { kv, clock } = setup();
    assert.equal(await kv.incrBy(utf8('n'), 1n), 1n);
    assert.equal(await kv.incrBy(utf8('n'), -3n), -2n);
    const g = await kv.get(utf8('n'));
    assert.equal(g.siblings.length, 1);
    assert.deepEqual(g.siblings[0]?.kind, 'counter');
    await set(kv, 's', '41', clock.wallMs() + 500);
    assert.equal(await kv.incrBy(utf8('s'), 1n), 42n);
    assert.equal((await kv.get(utf8('s'))).siblings[0]?.expiresAtMs, clock.wallMs() + 500);
    await set(kv, 'w', 'word');
    await assert.rejects(kv.incrBy(utf8('w'), 1n), (e: unknown) => isNotAnIntegerError(e) && (e as Error).message === 'value is not an integer or out of range');
    await set(kv, 'big', '9223372036854775807');
    await assert.rejects(kv.incrBy(utf8('big'), 1n), (e: unknown) => isIncrOverflowError(e));
  });

  it('touch changes only the expiry and reports whether the key exists', async () => {
    const { kv, clock } = setup();
    await set(kv, 'p', 'v', clock.wallMs() + 10);
    assert.equal(await kv.touch(utf8('p'), null), true);
    await clock.advance(20);
    assert.equal(await winner(kv, 'p'), 'v');
    assert.equal(await kv.touch(utf8('p'), clock.wallMs() + 5), true);
    await clock.advance(5);
    assert.equal(await winner(kv, 'p'), undefined);
    assert.equal(await kv.touch(utf8('p'), null), false);
    assert.equal(await kv.touch(utf8('missing'), null), false);
  });

  it('consistency: anything needing more than one replica is unavailable, with counts', async () => {
    const { kv } = setup();
    await kv.put(utf8('c'), utf8('v'), { w: 'all' });
    await kv.get(utf8('c'), { r: 'quorum' });
    await kv.get(utf8('c'), { r: 1 });
    await assert.rejects(kv.get(utf8('c'), { r: 2 }), (e: unknown) => e instanceof UnavailableError && e.answered === 1 && e.required === 2 && /only 1 of 2 replicas answered/.test(e.message));
    await assert.rejects(kv.put(utf8('c'), utf8('v'), { w: 3 }), UnavailableError);
    await assert.rejects(kv.put(utf8('c'), utf8('v'), { w: 0 }), InvalidArgumentError);
    await assert.rejects(kv.put(utf8('c'), utf8('v'), { context: Uint8Array.from([7, 7, 7]) }), (e: unknown) => e instanceof InvalidArgumentError && /not one ringkv issued/.test(e.message));
  });

  it('refuses an oversized value, naming both sizes', async () => {
    const { kv } = setup();
    await assert.rejects(kv.put(utf8('big'), new Uint8Array(maxValueBytes + 1)), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`${maxValueBytes + 1} bytes: the limit is ${maxValueBytes}`));
  });

  it('scan returns every live key exactly once across cursors, with decimal cursors', async () => {
    const { kv } = setup();
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
    for (const key of keys) await kv.put(utf8(key), utf8('v'));
    await kv.delete(utf8('k7'));
    const seen: string[] = [];
    let cursor = '0';
    let calls = 0;
    do {
      const page = await kv.scan(cursor, 25);
      calls++;
      assert.match(page.cursor, /^\d+$/);
      assert.ok(Number(page.cursor) < slotCount);
      seen.push(...page.keys.map(fromUtf8));
      cursor = page.cursor;
      assert.ok(calls < 200, 'the scan ends');
    } while (cursor !== '0');
    assert.deepEqual([...seen].sort(), keys.filter((k) => k !== 'k7').sort());
    assert.ok(calls >= 15, `pages were bounded (${calls} calls)`);
    await assert.rejects(kv.scan('abc', 10), InvalidArgumentError);
    await assert.rejects(kv.scan('0', 0), InvalidArgumentError);
  });

  it('approximateCount and flushAll', async () => {
    const { kv } = setup();
    for (let i = 0; i < 30; i++) await kv.put(utf8(`f${i}`), utf8('v'));
    assert.equal(await kv.approximateCount(), 30);
    await kv.flushAll();
    assert.equal(await kv.approximateCount(), 0);
    assert.deepEqual((await kv.scan('0', 100)).keys, []);
  });
});

describe('LocalKv against a model of what each context has seen', () => {
  it('a write removes exactly the versions its context saw, whatever contexts clients hold on to', async () => {
    const command = fc.oneof(
      fc.record({ op: fc.constant('read' as const) }),
      fc.record({ op: fc.constant('put' as const), token: fc.option(fc.nat(), { nil: undefined }), advance: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 25 }), async (commands) => {
        const { kv, clock } = setup();
        const key = utf8('m');
        const tokens: Array<{ context: Uint8Array; saw: Set<string> }> = [];
        let model = new Set<string>();
        let n = 0;
        for (const c of commands) {
          if (c.op === 'read') {
            const r = await kv.get(key);
            tokens.push({ context: r.context, saw: new Set(model) });
            continue;
          }
          if (c.advance) await clock.advance(1);
          const token = c.token === undefined || tokens.length === 0 ? undefined : tokens[c.token % tokens.length];
          const value = `v${n++}`;
          const out = await kv.put(key, utf8(value), token === undefined ? {} : { context: token.context });
          model = new Set([...model].filter((v) => !(token?.saw.has(v) ?? false)));
          model.add(value);
          tokens.push({ context: out.context, saw: new Set([...(token?.saw ?? []), value]) });
          const stored = (await kv.get(key)).siblings.map((s) => fromUtf8((s as ValueSibling).value));
          assert.deepEqual(stored.sort(), [...model].sort());
        }
      }),
      { numRuns: 200 },
    );
  });
});
