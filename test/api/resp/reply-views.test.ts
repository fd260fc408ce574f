/**
 * A GET answered at once (KvApi.winnerNow) gets its value as a view of the
 * engine's memory, valid until the next engine call. A reply may wait in the
 * socket's queue long after that (the client reads slowly), while the
 * engine reuses those bytes: the memtable writes an overwrite over the old
 * value, the block cache recycles an evicted block's buffer. Every GET
 * reply must still carry the value the GET read, whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryFileSystem, RealClock, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore } from '../../../src/replication/index.ts';
import { RawClient } from './raw-client.ts';
import { nodeId, startServer } from './helpers.ts';

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects if `p` has not settled within `ms`, so a lost reply fails the test instead of hanging it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not arrive within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function keyspaceHits(client: RawClient): Promise<number> {
  const info = await client.send(['INFO', 'stats']);
  const match = info.t === 'bulk' ? /keyspace_hits:(\d+)/.exec(info.v) : null;
  assert.ok(match !== null, `INFO stats without keyspace_hits: ${JSON.stringify(info)}`);
  return Number(match[1]);
}

/**
 * Waits (bounded) until the server has run some of the GETs queued after
 * `base` hits and then stopped (it stops reading a client whose replies pile
 * up), so the test does not depend on how fast the machine is.
 */
async function untilGetsStall(client: RawClient, base: number): Promise<void> {
  let last = base;
  let steady = 0;
  for (let i = 0; i < 250 && steady < 3; i++) {
    await sleep(20);
    const hits = await keyspaceHits(client);
    steady = hits > base && hits === last ? steady + 1 : 0;
    last = hits;
  }
  assert.ok(last > base, 'the server ran none of the queued GETs within 5 s');
}

const size = 512 * 1024;
/** Incompressible, so a table block holds it as stored (a compressed block is decoded into a fresh buffer). */
const randomValue = (): string => randomBytes(size).toString('latin1');
const first = randomValue();

/**
 * Sets `big` to `first` (engine options `options`), runs `prepare`, then
 * queues 40 GETs of it on a connection that does not read (more than
 * loopback's socket buffers hold, so most replies wait in the server's
 * write queue), runs `disturb` on another connection, and reads the GETs:
 * whole values, `first` up to some reply and `after` (what `disturb` left)
 * from there.
 */
async function queuedGetsSurvive(
  options: Parameters<typeof openLsm>[1],
  prepare: (engine: Awaited<ReturnType<typeof openLsm>>) => Promise<void>,
  disturb: (writer: RawClient, engine: Awaited<ReturnType<typeof openLsm>>) => Promise<void>,
  after = first,
): Promise<void> {
  const clock = new RealClock();
  const engine = await openLsm('/data', { sync: 'none', ...options }, { fs: new MemoryFileSystem(), clock, log: silentLogger });
  const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
  const started = await startServer({ kv, clock });
  const writer = await RawClient.open(started.port);
  const reader = await RawClient.open(started.port);
  try {
    assert.deepEqual(await writer.send(['SET', 'big', first]), { t: 'simple', v: 'OK' });
    await prepare(engine);
    reader.socket.pause();
    const base = await keyspaceHits(writer);
    const gets = 40;
    const queued = reader.sendMany(Array.from({ length: gets }, () => ['GET', 'big']));
    await untilGetsStall(writer, base);
    await disturb(writer, engine);
    reader.socket.resume();
    const replies = await within(queued, 20_000, `${gets} GET replies`);
    let before = 0;
    replies.forEach((reply, i) => {
      assert.equal(reply.t, 'bulk', `reply ${i}`);
      const v = (reply as { v: string }).v;
      assert.equal(v.length, size, `reply ${i}: length`);
      if (v === first && before === i) before++;
      // GETs the server had not run yet (it stops reading a client that does not read) may see `after`.
      else assert.ok(v === after, `reply ${i}: the value read was changed under the queued reply (${firstDifference(v, first)} bytes of it intact)`);
    });
    assert.ok(before > 0);
  } finally {
    reader.socket.destroy();
    writer.socket.destroy();
    await started.close();
    await engine.close();
  }
}

test('queued GET replies keep their value while the memtable overwrites it in place', async () => {
  const second = randomValue();
  await queuedGetsSurvive(
    {},
    async () => {},
    async (writer) => {
      // As long as the first value: written over its bytes.
      assert.deepEqual(await writer.send(['SET', 'big', second]), { t: 'simple', v: 'OK' });
      assert.deepEqual(await writer.send(['GET', 'big']), { t: 'bulk', v: second });
    },
    second,
  );
});

test('queued GET replies keep their value while the block cache recycles its block for other reads', async () => {
  const others = ['x', 'y', 'z', 'w'];
  await queuedGetsSurvive(
    // A block cache of about two such blocks, no row cache: every read of another key evicts one and reuses its buffer.
    { blockCacheBytes: 1200 * 1024, rowCacheBytes: 0 },
    async (engine) => {
      for (const c of others) await engine.put(Buffer.from(`other-${c}`), randomBytes(size));
      await engine.compact();
    },
    async (_writer, engine) => {
      for (let round = 0; round < 2; round++) {
        for (const c of others) assert.equal((await engine.get(Buffer.from(`other-${c}`)))?.value.length, size);
      }
    },
  );
});
