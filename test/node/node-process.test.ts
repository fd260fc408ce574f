/**
 * A real node process (`ringkv start` in a temp data dir, WAL sync always)
 * driven by real clients: ioredis, node-redis and fetch. Then kill -9 and a
 * restart on the same data: every acknowledged write is still there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { isAlive, killIfRunning, spawnCli, startNode, tempDir, type RunningNode } from './process-helpers.ts';

describe('a ringkv node process', () => {
  const dir = tempDir('node');
  let node: RunningNode | undefined;

  before(async () => {
    node = await startNode(dir.path, ['--wal-sync', 'always', '--node-id', 'alpha']);
  });
  after(() => {
    killIfRunning(node);
    dir.remove();
  });

  test('ioredis: set/get/del, TTL, counters, MGET', async () => {
    const redis = new Redis({ port: node!.respPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      assert.equal(await redis.set('io:a', 'apple'), 'OK');
      assert.equal(await redis.get('io:a'), 'apple');
      assert.equal(await redis.set('io:ttl', 'x', 'EX', 100), 'OK');
      const ttl = await redis.ttl('io:ttl');
      assert.ok(ttl > 95 && ttl <= 100, `ttl ${ttl}`);
      assert.equal(await redis.incrby('io:n', 5), 5);
      assert.deepEqual(await redis.mget('io:a', 'io:missing', 'io:n'), ['apple', null, '5']);
      const info = await redis.info();
      assert.match(info, /loading:0/);
      assert.match(info, /mode:standalone/, 'the node adds its cluster section to INFO');
      assert.match(info, /approximateKeys:\d+/, 'and its storage stats');
      assert.equal(await redis.del('io:a'), 1);
      assert.equal(await redis.get('io:a'), null);
    } finally {
      redis.disconnect();
    }
  });

  test('node-redis (HELLO 3): set/get and a value written over RESP reads back over HTTP', async () => {
    const client = createClient({ socket: { port: node!.respPort, host: '127.0.0.1', reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.set('nr:greeting', 'hello from node-redis');
      assert.equal(await client.get('nr:greeting'), 'hello from node-redis');
      const res = await fetch(`${node!.http}/v1/kv/nr%3Agreeting`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'hello from node-redis');
      // And the other way: HTTP write, RESP read.
      assert.equal((await fetch(`${node!.http}/v1/kv/http%3Av`, { method: 'PUT', body: 'via http' })).status, 204);
      assert.equal(await client.get('http:v'), 'via http');
    } finally {
      await client.close();
    }
  });

  test('HTTP: TTL expires, incr counts, delete removes', async () => {
    assert.equal((await fetch(`${node!.http}/v1/kv/short?ttl=1`, { method: 'PUT', body: 'brief' })).status, 204);
    assert.equal((await fetch(`${node!.http}/v1/kv/short`)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const gone = await fetch(`${node!.http}/v1/kv/short`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'RINGKV_NOT_FOUND');

    await fetch(`${node!.http}/v1/kv/hits/incr?by=3`, { method: 'POST' });
    const res = await fetch(`${node!.http}/v1/kv/hits/incr`, { method: 'POST' });
    assert.deepEqual(await res.json(), { value: '4' });
    assert.equal(await (await fetch(`${node!.http}/v1/kv/hits`)).text(), '4');

    assert.equal((await fetch(`${node!.http}/v1/kv/hits`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${node!.http}/v1/kv/hits`)).status, 404);
  });

  test('HTTP siblings: two writes from the same context both survive (300), a write with the merged context resolves them', async () => {
    const url = `${node!.http}/v1/kv/doc`;
    const first = await fetch(url, { method: 'PUT', body: 'v1' });
    const base = first.headers.get('x-ringkv-context') as string;
    assert.ok(base);
    for (const v of ['left', 'right']) {
      assert.equal((await fetch(url, { method: 'PUT', body: v, headers: { 'x-ringkv-context': base } })).status, 204);
    }
    const conflict = await fetch(url);
    assert.equal(conflict.status, 300);
    const body = (await conflict.json()) as { context: string; siblings: Array<{ kind: string; value: string }> };
    assert.deepEqual(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort(), ['left', 'right']);
    assert.equal(conflict.headers.get('x-ringkv-context'), body.context);

    assert.equal((await fetch(url, { method: 'PUT', body: 'merged', headers: { 'x-ringkv-context': body.context } })).status, 204);
    const resolved = await fetch(url);
    assert.equal(resolved.status, 200);
    assert.equal(await resolved.text(), 'merged');
  });

  test('a second node on the same data directory is refused with a clear error', async () => {
    const second = spawnCli(['start', '--data', dir.path, '--resp-port', '0', '--http-port', '0']);
    const { code } = await second.exited;
    assert.equal(code, 1);
    assert.match(second.output(), /in use by another ringkv process \(pid \d+\)/);
  });

  test('kill -9 then restart on the same data: every acknowledged write is there, generation bumped', async () => {
    const before = (await (await fetch(`${node!.http}/v1/node`)).json()) as { generation: number };
    const redis = new Redis({ port: node!.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    const acked = new Map<string, string>();
    try {
      // Concurrent writers over both protocols; each write counts once acknowledged.
      await Promise.all([
        (async () => {
          for (let i = 0; i < 150; i++) {
            await redis.set(`k:resp:${i}`, `value-${i}`);
            acked.set(`k:resp:${i}`, `value-${i}`);
          }
        })(),
        (async () => {
          for (let i = 0; i < 100; i++) {
            const res = await fetch(`${node!.http}/v1/kv/k%3Ahttp%3A${i}`, { method: 'PUT', body: `h-${i}` });
            assert.equal(res.status, 204);
            acked.set(`k:http:${i}`, `h-${i}`);
          }
        })(),
      ]);
    } finally {
      redis.disconnect();
    }
    const pid = node!.pid;
    await node!.kill9();
    assert.equal(isAlive(pid), false);

    node = await startNode(dir.path, ['--wal-sync', 'always', '--node-id', 'alpha']);
    const afterInfo = (await (await fetch(`${node.http}/v1/node`)).json()) as { id: string; generation: number };
    assert.equal(afterInfo.id, 'alpha');
    assert.equal(afterInfo.generation, before.generation + 1);
    const check = new Redis({ port: node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      const keys = [...acked.keys()];
      const values = await check.mget(...keys);
      const missing = keys.filter((k, i) => values[i] !== acked.get(k));
      assert.deepEqual(missing, [], 'acknowledged writes lost after kill -9');
      assert.equal(await check.get('nr:greeting'), 'hello from node-redis');
    } finally {
      check.disconnect();
    }
  });

  test('SIGTERM during a burst of writes: in-flight requests finish, the node exits 0, every acknowledged write is kept', async () => {
    const running = node!;
    const acked: string[] = [];
    let next = 0;
    let stopRequested: Promise<{ code: number | null }> | undefined;
    // Eight writers keep requests in flight; the stop lands in the middle of the stream.
    const writers = Array.from({ length: 8 }, async () => {
      // Bounded: a node that never acknowledges fails the test instead of looping.
      while (next < 5000) {
        const i = next++;
        try {
          const res = await fetch(`${running.http}/v1/kv/drain%3A${i}`, { method: 'PUT', body: `d${i}` });
          if (res.status === 204) acked.push(`drain:${i}`);
          else await res.body?.cancel();
        } catch {
          return; // Refused once the listener closed: not acknowledged, so not promised.
        }
        if (acked.length >= 100) stopRequested ??= running.stop();
      }
    });
    await Promise.all(writers);
    const stopped = await (stopRequested ?? running.stop());
    assert.ok(acked.length >= 100, `${acked.length} writes acknowledged`);
    assert.equal(stopped.code, 0, running.output());
    assert.match(running.output(), /"msg":"draining"[\s\S]*"msg":"stopped"/);

    node = await startNode(dir.path, ['--wal-sync', 'always', '--node-id', 'alpha']);
    const check = new Redis({ port: node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      if (acked.length > 0) {
        const values = await check.mget(...acked);
        assert.deepEqual(acked.filter((k, i) => values[i] !== `d${k.slice(6)}`), [], 'acknowledged writes lost across a graceful stop');
      }
    } finally {
      check.disconnect();
    }
    assert.equal((await node.stop()).code, 0);
  });
});
