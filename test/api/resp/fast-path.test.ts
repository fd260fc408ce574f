/**
 * The synchronous GET/SET path (KvApi winnerNow/putNow over the LSM engine):
 * a pipeline mixing it with commands that wait (APPEND, DEL, GET with
 * options) is answered exactly as one command at a time would be, under
 * WAL sync none (everything answers at once) and always (SET waits for its
 * fsync, and a GET of that key after it must see it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, RealClock, RealFileSystem, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import type { SyncMode } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore, durableLater, durableNow, wouldWait } from '../../../src/replication/index.ts';
import type { DurabilityListener, KvApi, WriteOptions } from '../../../src/replication/index.ts';
import { RawClient } from './raw-client.ts';
import type { Reply } from './raw-client.ts';
import { nodeId, startServer } from './helpers.ts';

type Command = ['SET', string, string] | ['GET', string] | ['DEL', string] | ['APPEND', string, string] | ['SET', string, string, 'KEEPTTL'];

const keyArb = fc.constantFrom('a', 'b', 'c');
const valueArb = fc.stringMatching(/^[a-z0-9]{0,6}$/);
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constant('SET' as const), keyArb, valueArb) },
  { weight: 4, arbitrary: fc.tuple(fc.constant('GET' as const), keyArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('DEL' as const), keyArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('APPEND' as const), keyArb, valueArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('SET' as const), keyArb, valueArb, fc.constant('KEEPTTL' as const)) },
);

/** What Redis answers, one command at a time. */
function model(commands: readonly Command[]): Reply[] {
  const data = new Map<string, string>();
  return commands.map((c): Reply => {
    const key = c[1];
    switch (c[0]) {
      case 'SET':
        data.set(key, c[2]);
        return { t: 'simple', v: 'OK' };
      case 'GET': {
        const v = data.get(key);
        return v === undefined ? { t: 'null' } : { t: 'bulk', v };
      }
      case 'DEL':
        return { t: 'int', v: data.delete(key) ? '1' : '0' };
      case 'APPEND': {
        const v = (data.get(key) ?? '') + c[2];
        data.set(key, v);
        return { t: 'int', v: String(v.length) };
      }
    }
  });
}

async function withLsmServer(sync: SyncMode, body: (client: RawClient) => Promise<void>, maxInflightCommands?: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `ringkv-resp-fast-${sync}-`));
  const clock = new RealClock();
  const engine = await openLsm(dir, { sync }, { fs: new RealFileSystem(), clock, log: silentLogger });
  const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
  const started = await startServer({ kv, clock, ...(maxInflightCommands === undefined ? {} : { limits: { maxInflightCommands } }) });
  const client = await RawClient.open(started.port);
  try {
    await body(client);
  } finally {
    client.close();
    await started.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [sync, runs, inflight] of [['none', 60, undefined], ['always', 15, undefined], ['always', 10, 1]] as const) {
  const how = inflight === undefined ? '' : ', one command at a time';
  test(`WAL sync ${sync}${how}: pipelines mixing the synchronous GET/SET with waiting commands answer in order`, async () => {
    await withLsmServer(
      sync,
      async (client) => {
        await fc.assert(
          fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 60 }), async (commands) => {
            await client.sendMany([['FLUSHALL']]);
            const replies = await client.sendMany(commands);
            assert.deepEqual(replies, model(commands));
          }),
          { numRuns: runs },
        );
      },
      inflight,
    );
  });
}

test('a direct command that has to wait replies in turn, and its error goes in its place', async () => {
  await withLsmServer('always', async (client) => {
    const big = 'x'.repeat(70_000);
    const replies = await client.sendMany([
      ['SET', 'k', 'v1'],
      ['GET', 'k'],
      ['SET', big, 'v'],
      ['GET', 'k'],
      ['SET', 'k', 'v2'],
      ['GET', 'k'],
    ]);
    assert.deepEqual(replies[0], { t: 'simple', v: 'OK' });
    assert.deepEqual(replies[1], { t: 'bulk', v: 'v1' });
    assert.equal(replies[2]?.t, 'error', 'a key over the limit is refused in its place');
    assert.deepEqual(replies.slice(3), [{ t: 'bulk', v: 'v1' }, { t: 'simple', v: 'OK' }, { t: 'bulk', v: 'v2' }]);
  });
});

for (const through of ['putNow', 'putNowThen'] as const) {
  test(`a SET answered in place whose write then fails gets its error in its place, and nothing after it is sent early (${through})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringkv-resp-fast-fail-'));
    const clock = new RealClock();
    const engine = await openLsm(dir, { sync: 'none' }, { fs: new RealFileSystem(), clock, log: silentLogger });
    const local = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    // Decided at once; durability fails later for 'bad', arrives late for 'slow'.
    const putNow = (key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void> | typeof durableNow | typeof wouldWait => {
      const name = Buffer.from(key).toString();
      if (name === 'bad') return Promise.reject(new IoError('Cannot append to the WAL: disk full'));
      const durable = local.putNow(key, value, options);
      if (name === 'slow' && durable !== wouldWait) return (durable === durableNow ? Promise.resolve() : durable).then(() => gate);
      return durable;
    };
    // The same writes told through a listener (the connection then reacts to no promise of its own).
    const putNowThen = (key: Uint8Array, value: Uint8Array, options: WriteOptions | undefined, listener: DurabilityListener, token: number): typeof durableNow | typeof wouldWait | typeof durableLater => {
      const durable = putNow(key, value, options);
      if (durable === durableNow || durable === wouldWait) return durable;
      durable.then(
        () => listener.writeSettled(token, false, undefined),
        (error: unknown) => listener.writeSettled(token, true, error),
      );
      return durableLater;
    };
    const kv: KvApi = Object.assign(Object.create(local) as LocalKv, through === 'putNow' ? { putNow, putNowThen: undefined } : { putNow, putNowThen });
    const started = await startServer({ kv, clock });
    const client = await RawClient.open(started.port);
    try {
      const replies = client.sendMany([['SET', 'a', '1'], ['SET', 'bad', 'x'], ['SET', 'slow', '2'], ['SET', 'b', '3'], ['GET', 'a'], ['GET', 'bad']]);
      let answered = false;
      void replies.then(() => (answered = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(answered, false, 'replies were sent before a write they acknowledge was durable');
      release();
      const got = await replies;
      assert.deepEqual(got[0], { t: 'simple', v: 'OK' });
      assert.equal(got[1]?.t, 'error');
      assert.match(String(got[1]?.v), /disk full/);
      assert.deepEqual(got.slice(2), [{ t: 'simple', v: 'OK' }, { t: 'simple', v: 'OK' }, { t: 'bulk', v: '1' }, { t: 'null' }]);
      // The connection goes on normally.
      assert.deepEqual(await client.sendMany([['SET', 'c', '4'], ['GET', 'c']]), [{ t: 'simple', v: 'OK' }, { t: 'bulk', v: '4' }]);
    } finally {
      release();
      client.close();
      await started.close();
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
