/**
 * Under WAL sync `always` a SET's +OK is written into the connection's
 * output at once but sent only after the fdatasync covering its WAL record
 * (Connection.ackWhenDurable, continued by the last write to settle). Here
 * the WAL's fsyncs wait for the test, or fail on demand: no reply byte may
 * reach the client before its covering sync finished, and a failed sync
 * turns exactly the SETs of its group into errors, in their places.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealClock, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore } from '../../../src/replication/index.ts';
import { RawClient } from './raw-client.ts';
import { nodeId, startServer } from './helpers.ts';
import { GatedSyncFileSystem } from '../../replication/versioning/gated-fs.ts';

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  assert.ok(done(), `timed out waiting for ${what}`);
}

async function withServer(body: (fs: GatedSyncFileSystem, clients: RawClient[]) => Promise<void>, connections: number): Promise<void> {
  const fs = new GatedSyncFileSystem();
  const clock = new RealClock();
  const engine = await openLsm('/db', { sync: 'always' }, { fs, clock, log: silentLogger });
  const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
  const started = await startServer({ kv, clock });
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < connections; i++) clients.push(await RawClient.open(started.port));
    await body(fs, clients);
  } finally {
    fs.release();
    for (const c of clients) c.close();
    await started.close();
    await engine.close();
  }
}

/** Counts reply bytes as they arrive, with the syncs finished at the first one. */
function watch(client: RawClient, fs: GatedSyncFileSystem): { bytes: number; syncsAtFirstByte: number | undefined } {
  const seen = { bytes: 0, syncsAtFirstByte: undefined as number | undefined };
  client.socket.on('data', (chunk: Buffer) => {
    if (seen.bytes === 0) seen.syncsAtFirstByte = fs.syncsFinished;
    seen.bytes += chunk.length;
  });
  return seen;
}

test('no SET reply is sent before the fdatasync covering it, pipelined or one per connection', async () => {
  await withServer(async (fs, clients) => {
    const [a, ...others] = clients as [RawClient, ...RawClient[]];
    // Warm the connections up, and let their first syncs finish.
    for (const c of clients) assert.deepEqual(await c.sendMany([['SET', 'warm', 'x']]), [{ t: 'simple', v: 'OK' }]);
    const finishedBefore = fs.syncsFinished;
    fs.gated = true;
    const watched = clients.map((c) => watch(c, fs));
    const pipelined = a.sendMany([['SET', 'k1', 'v1'], ['SET', 'k2', 'v2'], ['GET', 'k1'], ['SET', 'k1', 'v3'], ['GET', 'k1']]);
    const singles = others.map((c, i) => c.sendMany([['SET', `s${i}`, String(i)]]));
    await until('a gated sync', () => fs.syncsStarted > finishedBefore);
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const w of watched) assert.equal(w.bytes, 0, 'a reply left before the fsync covering its SET');
    fs.release();
    assert.deepEqual(await pipelined, [
      { t: 'simple', v: 'OK' },
      { t: 'simple', v: 'OK' },
      { t: 'bulk', v: 'v1' },
      { t: 'simple', v: 'OK' },
      { t: 'bulk', v: 'v3' },
    ]);
    for (const reply of await Promise.all(singles)) assert.deepEqual(reply, [{ t: 'simple', v: 'OK' }]);
    for (const w of watched) assert.ok((w.syncsAtFirstByte ?? 0) > finishedBefore, 'a reply left before any gated sync finished');
  }, 4);
});

test('a failed fdatasync turns exactly the SETs of its group into errors, in their places, and the connection goes on', async () => {
  await withServer(async (fs, clients) => {
    const [a, b] = clients as [RawClient, RawClient];
    assert.deepEqual(await a.sendMany([['SET', 'k', 'old']]), [{ t: 'simple', v: 'OK' }]);
    fs.gated = true;
    const replies = a.sendMany([['GET', 'k'], ['SET', 'k', 'new'], ['SET', 'other', 'x'], ['GET', 'k']]);
    const single = b.sendMany([['SET', 'b', '1']]);
    await until('a gated sync', () => fs.syncsStarted > 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    fs.failing = true;
    fs.release();
    const got = await replies;
    assert.deepEqual(got[0], { t: 'bulk', v: 'old' });
    assert.equal(got[1]?.t, 'error');
    assert.match(String(got[1]?.v), /EIO/);
    assert.equal(got[2]?.t, 'error');
    // The GET waited for the failed SET of its key, and sees what is durable.
    assert.deepEqual(got[3], { t: 'bulk', v: 'old' });
    const other = await single;
    assert.equal(other[0]?.t, 'error');
    fs.failing = false;
    assert.deepEqual(await a.sendMany([['SET', 'k', 'after'], ['GET', 'k'], ['GET', 'other']]), [{ t: 'simple', v: 'OK' }, { t: 'bulk', v: 'after' }, { t: 'null' }]);
    assert.deepEqual(await b.sendMany([['SET', 'b', '2'], ['GET', 'b']]), [{ t: 'simple', v: 'OK' }, { t: 'bulk', v: '2' }]);
  }, 2);
});

test('a pipeline of more acknowledged SETs than a scan covers still holds back the commands on their keys', async () => {
  await withServer(async (fs, clients) => {
    const [a] = clients as [RawClient];
    assert.deepEqual(await a.sendMany([['SET', 'k3', 'old']]), [{ t: 'simple', v: 'OK' }]);
    fs.gated = true;
    const commands: Array<[string, string, string] | [string, string]> = [];
    for (let i = 0; i < 40; i++) commands.push(['SET', `k${i}`, `v${i}`]);
    commands.push(['GET', 'k3'], ['GET', 'k38'], ['SET', 'k38', 'again'], ['GET', 'k38'], ['GET', 'absent']);
    const replies = a.sendMany(commands);
    await until('a gated sync', () => fs.syncsStarted > 1);
    fs.release();
    const got = await replies;
    for (let i = 0; i < 40; i++) assert.deepEqual(got[i], { t: 'simple', v: 'OK' });
    assert.deepEqual(got.slice(40), [{ t: 'bulk', v: 'v3' }, { t: 'bulk', v: 'v38' }, { t: 'simple', v: 'OK' }, { t: 'bulk', v: 'again' }, { t: 'null' }]);
  }, 1);
});
