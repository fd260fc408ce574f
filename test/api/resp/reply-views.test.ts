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
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { MemoryFileSystem, RealClock, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore } from '../../../src/replication/index.ts';
import { RawClient, decodeReply, encodeCommand } from './raw-client.ts';
import type { Reply } from './raw-client.ts';
import { nodeId, startServer } from './helpers.ts';

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads `count` replies from a socket that was left paused; bounded by `timeoutMs`. */
function readReplies(socket: Socket, count: number, timeoutMs: number): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let pos = 0;
    const replies: Reply[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${replies.length} of ${count} replies within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf.subarray(pos), chunk]);
      pos = 0;
      for (;;) {
        const decoded = decodeReply(buf, pos);
        if (decoded === undefined) break;
        replies.push(decoded[0]);
        pos = decoded[1];
        if (replies.length === count) {
          clearTimeout(timer);
          resolve(replies);
          return;
        }
      }
    });
    socket.resume();
  });
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
  const reader = connect(started.port, '127.0.0.1');
  const connected = new Promise<void>((resolve, reject) => {
    reader.once('connect', resolve);
    reader.once('error', reject);
  });
  try {
    assert.deepEqual(await writer.send(['SET', 'big', first]), { t: 'simple', v: 'OK' });
    await prepare(engine);
    await connected;
    reader.pause();
    const gets = 40;
    reader.write(Buffer.concat(Array.from({ length: gets }, () => encodeCommand(['GET', 'big']))));
    await sleep(200);
    await disturb(writer, engine);
    const replies = await readReplies(reader, gets, 20_000);
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
    reader.destroy();
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
