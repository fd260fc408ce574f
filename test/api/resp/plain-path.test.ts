/**
 * The plain GET/SET path (Connection.plainGet/plainSet: answered from the
 * parser's bytes, no argument buffers, the batch's wall time for expiry)
 * must answer exactly what the general path answers. Two servers over two
 * stores on one virtual clock get the same random pipelines: one as
 * ordinary frames (plain GET/SET take the plain path), the other with the
 * array header written `*02` (the same command to the general parser, which
 * the plain path declines). Replies, the onCommand names and the slowlog's
 * arguments must be identical across values, expiry, deletes, counters,
 * siblings from a peer, the value limit, wrong arity, any name case,
 * NOAUTH and frames split across socket reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryFileSystem, VirtualClock, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import type { Engine } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore, makeObject } from '../../../src/replication/index.ts';
import type { KvApi, ReadOptions, Version, Winner, WouldWait } from '../../../src/replication/index.ts';
import { RespParser, plainGet, plainNone, plainSet } from '../../../src/api/resp/parser.ts';
import { RawClient, encodeCommand } from './raw-client.ts';
import type { Reply } from './raw-client.ts';
import { nodeId, startServer } from './helpers.ts';
import type { Started } from './helpers.ts';

type Step =
  | { t: 'pipeline'; commands: string[][] }
  | { t: 'advance'; ms: number }
  | { t: 'peer'; key: string; kind: 'value' | 'tombstone'; value: string; ahead: number };

const keyArb = fc.constantFrom('a', 'b', 'c', 'k{x}');
const valueArb = fc.oneof(fc.stringMatching(/^[a-z0-9]{0,8}$/), fc.constantFrom('12', '-7', 'x'.repeat(70)));
const caseArb = fc.constantFrom('GET', 'get', 'gEt');
const asArgs = (c: readonly string[]): string[] => [...c];
const commandArb: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom('SET', 'set', 'SeT'), keyArb, valueArb).map(asArgs) },
  { weight: 6, arbitrary: fc.tuple(caseArb, keyArb).map(asArgs) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('SET'), keyArb, valueArb, fc.constant('PX'), fc.integer({ min: 1, max: 40 }).map(String)).map(asArgs) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('DEL'), keyArb).map(asArgs) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('INCRBY'), keyArb, fc.integer({ min: -5, max: 5 }).map(String)).map(asArgs) },
  { weight: 1, arbitrary: fc.constantFrom(['GET'], ['GET', 'a', 'b'], ['SET', 'a'], ['SET', 'a', 'b', 'c', 'd']).map(asArgs) },
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.array(commandArb, { minLength: 1, maxLength: 8 }).map((commands): Step => ({ t: 'pipeline', commands })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 30 }).map((ms): Step => ({ t: 'advance', ms })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ key: keyArb, kind: fc.constantFrom('value' as const, 'tombstone' as const), value: valueArb, ahead: fc.integer({ min: -5, max: 5 }) })
      .map((p): Step => ({ t: 'peer', ...p })),
  },
);

/** The same command for the general parser only: `*0N` is N to it, and not a frame the plain path reads. */
function generalFrame(args: readonly string[]): Buffer {
  const frame = encodeCommand(args);
  return Buffer.concat([Buffer.from('*0'), frame.subarray(1)]);
}

/** Counts winnerNow calls that carried the batch's time (only the plain path passes one). */
class Spy implements KvApi {
  plainReads = 0;
  constructor(private readonly kv: LocalKv) {}
  get(key: Uint8Array, options?: ReadOptions): ReturnType<KvApi['get']> {
    return this.kv.get(key, options);
  }
  winnerNow(key: Uint8Array, options?: ReadOptions): Winner | undefined | WouldWait {
    if (options?.nowWallMs !== undefined) this.plainReads++;
    return this.kv.winnerNow(key, options);
  }
  putNow(...args: Parameters<LocalKv['putNow']>): ReturnType<LocalKv['putNow']> {
    return this.kv.putNow(...args);
  }
  put(...args: Parameters<KvApi['put']>): ReturnType<KvApi['put']> {
    return this.kv.put(...args);
  }
  delete(...args: Parameters<KvApi['delete']>): ReturnType<KvApi['delete']> {
    return this.kv.delete(...args);
  }
  incrBy(...args: Parameters<KvApi['incrBy']>): ReturnType<KvApi['incrBy']> {
    return this.kv.incrBy(...args);
  }
  touch(...args: Parameters<KvApi['touch']>): ReturnType<KvApi['touch']> {
    return this.kv.touch(...args);
  }
  scan(...args: Parameters<KvApi['scan']>): ReturnType<KvApi['scan']> {
    return this.kv.scan(...args);
  }
  approximateCount(): ReturnType<KvApi['approximateCount']> {
    return this.kv.approximateCount();
  }
  flushAll(): ReturnType<KvApi['flushAll']> {
    return this.kv.flushAll();
  }
}

interface Side {
  store: ReplicaStore;
  engine: Engine;
  spy: Spy;
  started: Started;
  client: RawClient;
  commands: string[];
}

async function openSide(clock: VirtualClock, password?: string): Promise<Side> {
  const engine = await openLsm('/data', { sync: 'none' }, { fs: new MemoryFileSystem(), clock, log: silentLogger });
  const store = new ReplicaStore({ engine, clock, nodeId });
  const spy = new Spy(new LocalKv({ store, clock }));
  const commands: string[] = [];
  const started = await startServer({
    kv: spy,
    clock,
    settingsInit: { 'max-value-bytes': '64', 'slowlog-log-slower-than': '0', 'slowlog-max-len': '1000' },
    onCommand: (name) => commands.push(name),
    ...(password === undefined ? {} : { auth: { password } }),
  });
  return { store, engine, spy, started, client: await RawClient.open(started.port), commands };
}

async function closeSide(side: Side): Promise<void> {
  side.client.close();
  await side.started.close();
  await side.engine.close();
}

/** A version another node wrote, concurrent with whatever this node holds: a sibling (or a tombstone beside it). */
function peerObject(step: Extract<Step, { t: 'peer' }>, wallMs: number, counter: number): ReturnType<typeof makeObject> {
  const version: Version = {
    dot: { node: 'peer-z', counter },
    kind: step.kind,
    value: step.kind === 'value' ? Buffer.from(step.value) : new Uint8Array(0),
    counter: [],
    expiresAtMs: null,
    timestampMs: wallMs + step.ahead,
    deletedAtMs: step.kind === 'tombstone' ? wallMs : null,
  };
  return makeObject([{ node: 'peer-z', counter, lastWallMs: wallMs }], [version]);
}

/** Runs `steps` on both sides; returns the replies of each (plain side, general side). */
async function runBoth(steps: readonly Step[], split: boolean, password?: string): Promise<void> {
  const clock = new VirtualClock({ startMs: 1000 });
  const plain = await openSide(clock, password);
  const general = await openSide(clock, password);
  let peerCounter = 0;
  try {
    for (const step of steps) {
      if (step.t === 'advance') {
        await clock.advance(step.ms);
      } else if (step.t === 'peer') {
        peerCounter++;
        const key = Buffer.from(step.key);
        for (const side of [plain, general]) await side.store.apply(key, peerObject(step, clock.wallMs(), peerCounter));
      } else {
        const frames = step.commands.map((c) => encodeCommand(c));
        let fromPlain: Reply[];
        if (split) {
          // Every frame cut in two writes a moment apart: the plain path must not read a frame it does not hold whole.
          const bytes = Buffer.concat(frames);
          const cut = Math.max(1, bytes.length >> 1);
          const pending = plain.client.sendFrames([bytes.subarray(0, cut)], frames.length);
          await new Promise((r) => setTimeout(r, 5));
          plain.client.socket.write(bytes.subarray(cut));
          fromPlain = await pending;
        } else {
          fromPlain = await plain.client.sendFrames(frames);
        }
        const fromGeneral = await general.client.sendFrames(step.commands.map(generalFrame));
        assert.deepEqual(fromPlain, fromGeneral, `replies to ${JSON.stringify(step.commands)}`);
      }
    }
    // As multisets: pipelined commands that wait finish (and are counted) in whichever order they settle.
    assert.deepEqual(plain.commands.sort(), general.commands.sort(), 'onCommand names');
    const slowPlain = await plain.client.send(['SLOWLOG', 'GET', '1000']);
    const slowGeneral = await general.client.send(['SLOWLOG', 'GET', '1000']);
    assert.deepEqual(slowlogArgs(slowPlain), slowlogArgs(slowGeneral), 'slowlog arguments');
    assert.equal(general.spy.plainReads, 0, 'the general side never took the plain path');
    return;
  } finally {
    await closeSide(plain);
    await closeSide(general);
    if (process.env['RINGKV_TEST_DEBUG'] !== undefined) process.stderr.write(`plain reads ${plain.spy.plainReads}\n`);
  }
}

/** Each slowlog entry's arguments (ids, times, durations and client addresses differ between the servers). */
function slowlogArgs(reply: Reply): unknown {
  assert.equal(reply.t, 'array');
  return (reply as { v: Reply[] }).v.map((entry) => JSON.stringify((entry as { v: Reply[] }).v[3])).sort();
}

test('plain GET/SET answer exactly as the general path: values, expiry, deletes, counters, siblings, limits, arity, name case', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => runBoth(steps, false)),
    { numRuns: 40 },
  );
});

test('plain GET/SET frames split across socket reads answer as the general path', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 10 }), async (steps) => runBoth(steps, true)),
    { numRuns: 10 },
  );
});

test('plain GET/SET before AUTH answer NOAUTH, and after it the value, as the general path', async () => {
  const steps: Step[] = [
    { t: 'pipeline', commands: [['GET', 'a'], ['SET', 'a', 'v'], ['get', 'a']] },
    { t: 'pipeline', commands: [['AUTH', 'wrong'], ['GET', 'a']] },
    { t: 'pipeline', commands: [['AUTH', 'secret'], ['SET', 'a', 'v'], ['GET', 'a'], ['GET', 'b']] },
  ];
  await runBoth(steps, false, 'secret');
});

test('the plain path is taken: plain GETs reach the store with the batch time, and a later GET sees the expiry by it', async () => {
  const clock = new VirtualClock({ startMs: 1000 });
  const side = await openSide(clock);
  try {
    assert.deepEqual(await side.client.sendFrames([encodeCommand(['SET', 'k', 'v', 'PX', '10']), encodeCommand(['SET', 'p', 'q'])]), [
      { t: 'simple', v: 'OK' },
      { t: 'simple', v: 'OK' },
    ]);
    assert.deepEqual(await side.client.sendFrames([encodeCommand(['GET', 'k']), encodeCommand(['GET', 'p'])]), [{ t: 'bulk', v: 'v' }, { t: 'bulk', v: 'q' }]);
    assert.equal(side.spy.plainReads, 2);
    await clock.advance(10);
    assert.deepEqual(await side.client.sendFrames([encodeCommand(['GET', 'k']), encodeCommand(['GET', 'p'])]), [{ t: 'null' }, { t: 'bulk', v: 'q' }]);
    assert.equal(side.spy.plainReads, 4);
  } finally {
    await closeSide(side);
  }
});

test('peekPlain finds exactly the plain GET and SET frames next() would return, under any chunking', () => {
  const frameArb = fc.oneof(
    fc.tuple(caseArb, fc.stringMatching(/^[a-z]{0,12}$/)).map(([n, k]) => [n, k]),
    fc.tuple(fc.constantFrom('SET', 'set'), fc.stringMatching(/^[a-z]{0,5}$/), fc.stringMatching(/^[a-z0-9 ]{0,20}$/)).map(([n, k, v]) => [n, k, v]),
    fc.constantFrom(['PING'], ['GET'], ['GET', 'a', 'b'], ['SET', 'k'], ['SET', 'k', 'v', 'EX', '5'], ['GETEX', 'k'], ['SETX', 'k', 'v'], ['ECHO', 'GET']),
  );
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), (commands, cuts) => {
      const bytes = Buffer.concat(commands.map((c) => encodeCommand(c)));
      const parser = new RespParser();
      const seen: string[][] = [];
      let plainSeen = 0;
      let at = 0;
      let cut = 0;
      while (at < bytes.length) {
        const size = cuts[cut++ % cuts.length] as number;
        parser.feed(bytes.subarray(at, at + size));
        at += size;
        for (;;) {
          const kind = parser.peekPlain();
          if (kind !== plainNone) {
            const input = parser.input;
            const name = input.toString('latin1', parser.plainNameAt, parser.plainNameAt + 3);
            const key = input.toString('latin1', parser.plainKeyAt, parser.plainKeyAt + parser.plainKeyBytes);
            const args = [name, key];
            if (kind === plainSet) args.push(input.toString('latin1', parser.plainValueAt, parser.plainValueAt + parser.plainValueBytes));
            assert.equal(name.toLowerCase(), kind === plainGet ? 'get' : 'set');
            parser.consumePlain();
            seen.push(args);
            plainSeen++;
            continue;
          }
          const args = parser.next();
          if (args === undefined) break;
          seen.push(args.map((a) => a.toString('latin1')));
        }
      }
      assert.deepEqual(seen, commands);
      // Whole frames in one chunk are always read plainly when they are plain.
      if (cuts.every((c) => c >= bytes.length)) {
        assert.equal(plainSeen, commands.filter((c) => (c.length === 2 && c[0]?.toLowerCase() === 'get') || (c.length === 3 && c[0]?.toLowerCase() === 'set')).length);
      }
    }),
    { numRuns: 300 },
  );
});

test('peekPlain leaves limits to next(): a bulk over the limit or an unauthenticated client is not read plainly', () => {
  const parser = new RespParser({ maxBulkBytes: 4, maxArrayLength: 16, maxInlineBytes: 64, maxCommandBytes: 1024 });
  parser.feed(encodeCommand(['SET', 'k', 'toolong']));
  assert.equal(parser.peekPlain(), plainNone);
  assert.throws(() => parser.next(), /invalid bulk length/);
  const restricted = new RespParser();
  restricted.restricted = true;
  restricted.feed(encodeCommand(['GET', 'k']));
  assert.equal(restricted.peekPlain(), plainNone);
  assert.deepEqual(restricted.next()?.map(String), ['GET', 'k']);
});
