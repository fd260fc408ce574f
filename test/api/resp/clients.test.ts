/**
 * Real Redis clients against a RespServer (LocalKv over MemoryEngine) on a
 * loopback port: ioredis (RESP2 and its HELLO 3 handshake), node-redis with
 * RESP2 and RESP3, and redis-cli (interactive-free invocations).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { createClient } from 'redis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock, RealFileSystem, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore } from '../../../src/replication/index.ts';
import { nodeId, startServer } from './helpers.ts';
import { RawClient } from './raw-client.ts';
import type { Started } from './helpers.ts';

let server: Started;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.close();
});

test('ioredis: strings, expiry, counters, pipelines, scanStream, info', async () => {
  const redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    assert.equal(await redis.set('io:a', 'hello'), 'OK');
    assert.equal(await redis.get('io:a'), 'hello');
    assert.equal(await redis.set('io:a', 'x', 'EX', 100, 'GET'), 'hello');
    assert.ok((await redis.ttl('io:a')) > 98);
    assert.equal(await redis.incr('io:n'), 1);
    assert.equal(await redis.incrby('io:n', 41), 42);
    assert.equal(await redis.get('io:n'), '42');
    assert.equal(await redis.incrbyfloat('io:f', '0.1'), '0.1');
    assert.deepEqual(await redis.mget('io:a', 'io:missing', 'io:n'), ['x', null, '42']);
    const piped = await redis.pipeline().set('io:p', '1').incr('io:p').get('io:p').del('io:p').exists('io:p').exec();
    assert.deepEqual(piped?.map(([e, v]) => [e, v]), [[null, 'OK'], [null, 2], [null, '2'], [null, 1], [null, 0]]);
    const buf = Buffer.from([0, 255, 13, 10, 1]);
    await redis.set('io:bin', buf);
    assert.deepEqual(await redis.getBuffer('io:bin'), buf);
    const scanned: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = redis.scanStream({ match: 'io:*', count: 2 });
      stream.on('data', (keys: string[]) => scanned.push(...keys));
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    assert.deepEqual([...new Set(scanned)].sort(), ['io:a', 'io:bin', 'io:f', 'io:n']);
    await assert.rejects(redis.call('lpush', 'io:l', 'x'), /unknown command 'lpush', with args beginning with: 'io:l' 'x'/);
    assert.match(await redis.info('server'), /redis_version:/);
  } finally {
    redis.disconnect();
  }
});

test('ioredis Cluster: discovers the slots with CLUSTER SLOTS and routes keys to the node that serves them', async () => {
  const cluster = new Cluster([{ host: '127.0.0.1', port: server.port }], { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
  await cluster.connect();
  try {
    assert.equal(await cluster.set('cl:{t}a', '1'), 'OK');
    assert.equal(await cluster.set('cl:{t}b', '2'), 'OK');
    assert.deepEqual(await cluster.mget('cl:{t}a', 'cl:{t}b'), ['1', '2']);
    assert.equal(cluster.nodes('master').length, 1);
  } finally {
    cluster.disconnect();
  }
});

test('node-redis RESP3 and RESP2: handshake, strings, maps, errors', async () => {
  for (const RESP of [3, 2] as const) {
    const client = createClient({ url: `redis://127.0.0.1:${server.port}`, RESP });
    client.on('error', () => {});
    await client.connect();
    try {
      const key = `nr${RESP}:k`;
      assert.equal(await client.set(key, 'v1', { EX: 50 }), 'OK');
      assert.equal(await client.get(key), 'v1');
      assert.ok((await client.pTTL(key)) > 49_000);
      assert.equal(await client.incrBy(`nr${RESP}:n`, 5), 5);
      assert.equal(await client.exists([key, `nr${RESP}:n`, 'nope']), 2);
      assert.equal(await client.del(key), 1);
      assert.equal(await client.get(key), null);
      const config = await client.configGet('default-*-consistency');
      assert.deepEqual({ ...config }, { 'default-read-consistency': 'one', 'default-write-consistency': 'one' });
      await assert.rejects(client.sendCommand(['SADD', 's', 'm']), /unknown command 'SADD'/);
      const hello = (await client.sendCommand(['HELLO', String(RESP)])) as unknown;
      if (RESP === 3) assert.equal((hello as Record<string, unknown>)['proto'] ?? (hello as Map<string, unknown>).get?.('proto'), 3);
      else assert.ok(Array.isArray(hello) && hello.includes('proto'));
    } finally {
      await client.quit();
    }
  }
});

function cli(args: string[], input?: string): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile('redis-cli', ['-p', String(server.port), ...args], (error, stdout) => {
      resolve({ stdout, code: error === null ? 0 : ((error as { code?: number }).code ?? 1) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

test('redis-cli: commands, --scan, COMMAND, CLUSTER and ringkv commands', async () => {
  assert.equal((await cli(['PING'])).stdout, 'PONG\n');
  assert.equal((await cli(['SET', 'cli:k', 'a b'])).stdout, 'OK\n');
  assert.equal((await cli(['GET', 'cli:k'])).stdout, 'a b\n');
  assert.equal((await cli(['--raw', 'INCR', 'cli:n'])).stdout, '1\n');
  // Commands piped on stdin, one per line (redis-cli sends them pipelined).
  const piped = await cli([], 'SET cli:p 1\nINCRBY cli:p 9\nGET cli:p\n');
  assert.equal(piped.stdout, 'OK\n10\n10\n');
  const scan = await cli(['--scan', '--pattern', 'cli:*']);
  assert.deepEqual(scan.stdout.trim().split('\n').sort(), ['cli:k', 'cli:n', 'cli:p']);
  assert.match((await cli(['COMMAND', 'COUNT'])).stdout, /^\d+\n$/);
  assert.match((await cli(['COMMAND', 'INFO', 'get'])).stdout, /get\n2\nreadonly\nfast\n1\n1\n1/);
  assert.match((await cli(['CLUSTER', 'KEYSLOT', 'foo'])).stdout, /^12182\n$/);
  assert.match((await cli(['CLUSTER', 'SLOTS'])).stdout, new RegExp(`^0\\n16383\\n127.0.0.1\\n${server.port}\\n[0-9a-f]{40}\\n$`));
  const nodes = (await cli(['CLUSTER', 'NODES'])).stdout;
  assert.match(nodes, new RegExp(`^[0-9a-f]{40} 127.0.0.1:${server.port}@0 myself,master - 0 0 1 connected 0-16383\\n`));
  assert.match((await cli(['RINGKV.GETALL', 'cli:k'])).stdout, /^context\n[A-Za-z0-9+/=]+\nsiblings\nkind\nvalue\nvalue\na b\n/);
  assert.equal((await cli(['LPUSH', 'l', 'x'])).stdout.trim(), "ERR unknown command 'LPUSH', with args beginning with: 'l' 'x'");
});

test('over the LSM engine (WAL sync always): acknowledged writes survive a restart on the same directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-resp-lsm-'));
  const clock = new RealClock();
  const open = async () => {
    const engine = await openLsm(dir, { sync: 'always' }, { fs: new RealFileSystem(), clock, log: silentLogger });
    const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
    return { engine, started: await startServer({ kv, clock }) };
  };
  try {
    const first = await open();
    const redis = new Redis({ port: first.started.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    await redis.mset('lsm:a', '1', 'lsm:b', 'two');
    await redis.incrby('lsm:a', 41);
    await redis.set('lsm:t', 'x', 'EX', 1000);
    await redis.set('lsm:gone', 'y');
    await redis.del('lsm:gone');
    redis.disconnect();
    await first.started.close();
    await first.engine.close();

    const second = await open();
    const again = new Redis({ port: second.started.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    await again.connect();
    assert.deepEqual(await again.mget('lsm:a', 'lsm:b', 'lsm:gone'), ['42', 'two', null]);
    assert.ok((await again.ttl('lsm:t')) > 990);
    assert.equal(await again.dbsize(), 3);
    again.disconnect();
    await second.started.close();
    await second.engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pipelined writes to different keys share WAL group commits; writes to one key stay in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-resp-group-'));
  const clock = new RealClock();
  const engine = await openLsm(dir, { sync: 'always' }, { fs: new RealFileSystem(), clock, log: silentLogger });
  const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
  const started = await startServer({ kv, clock });
  try {
    const c = await RawClient.open(started.port);
    const fsyncs = (): number => engine.stats()['fsyncs'] as number;
    const before = fsyncs();
    const replies = await c.sendMany(Array.from({ length: 64 }, (_, i) => ['SET', `g:${i}`, String(i)]));
    assert.ok(replies.every((r) => r.t === 'simple' && r.v === 'OK'));
    const used = fsyncs() - before;
    // One sync per command would be 64; concurrent pipelined commands share them.
    assert.ok(used <= 16, `${used} fsyncs for 64 pipelined SETs`);
    const ordered = await c.sendMany([['SET', 'same', 'a'], ['APPEND', 'same', 'b'], ['GET', 'same'], ['SET', 'same', 'c'], ['GET', 'same'], ['DEL', 'same'], ['GET', 'same']]);
    assert.deepEqual(ordered, [
      { t: 'simple', v: 'OK' }, { t: 'int', v: '2' }, { t: 'bulk', v: 'ab' }, { t: 'simple', v: 'OK' }, { t: 'bulk', v: 'c' }, { t: 'int', v: '1' }, { t: 'null' },
    ]);
    c.close();
  } finally {
    await started.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
