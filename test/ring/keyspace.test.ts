import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { hashedRange, keySlot, redisSlotCount, Ring } from '../../src/ring/index.ts';

/**
 * cluster-key-slot departs from Redis when the first `{` is followed directly
 * by `}` ("foo{}{bar}"): Redis hashes the whole key, the package keeps
 * scanning for a later tag. Keys with that shape are compared with a real
 * redis-server below; every other key must agree with the package.
 */
function hasEmptyFirstTag(key: Uint8Array): boolean {
  const open = key.indexOf(0x7b);
  return open >= 0 && key[open + 1] === 0x7d;
}

const braced = fc.array(fc.oneof(fc.constantFrom('{', '}', '{}', 'user', ':', 'é'), fc.string({ maxLength: 6 })), { maxLength: 8 }).map((parts) => parts.join(''));

test('keySlot matches cluster-key-slot on Redis hash-tag examples', () => {
  const keys = ['', 'a', 'user1000', '{user1000}.following', '{user1000}.followers', 'foo{{bar}}zap', 'foo{bar}{zap}', '{', '}', '}{', 'a{b', 'a}b{c}', '{a}', 'x{y}z{w}', 'tag{  }x', '123456789'];
  for (const key of keys) assert.equal(keySlot(Buffer.from(key)), calculateSlot(key), `slot of ${JSON.stringify(key)}`);
  // The CRC16/XMODEM check value of "123456789" is 0x31c3; Redis takes it mod 16384.
  assert.equal(keySlot(Buffer.from('123456789')), 0x31c3 % redisSlotCount);
  // Redis's documented rule: an empty first tag means the whole key is hashed.
  // redis-server 7's CLUSTER KEYSLOT answers 8363 (the whole key hashed); cluster-key-slot says 4015.
  assert.equal(keySlot(Buffer.from('foo{}{bar}')), 8363);
});

test('keySlot matches cluster-key-slot on random text keys with braces', () => {
  fc.assert(
    fc.property(braced, (key) => hasEmptyFirstTag(Buffer.from(key)) || keySlot(Buffer.from(key)) === calculateSlot(key)),
    { numRuns: 3000 },
  );
});

test('keySlot matches cluster-key-slot on random binary keys', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const key = Buffer.from(bytes);
      return hasEmptyFirstTag(key) || keySlot(key) === calculateSlot(key);
    }),
    { numRuns: 3000 },
  );
});

test('keySlot equals CLUSTER KEYSLOT of a real redis-server, empty tags included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-slot-'));
  const socket = join(dir, 'redis.sock');
  // A unix socket and port 0: no TCP port to collide with other tests.
  const server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(50);
    await client.connect();
    const keys = [
      ...['foo{}{bar}', '{}{}', '{}', '{{}}', 'a{}b{c}', 'x{}', 'foo{{bar}}zap', 'foo{bar}{zap}'].map((k) => Buffer.from(k)),
      ...fc.sample(braced, { numRuns: 1500, seed: 42 }).map((k) => Buffer.from(k)),
      ...fc.sample(fc.uint8Array({ maxLength: 40 }), { numRuns: 500, seed: 7 }).map((k) => Buffer.from(k)),
    ];
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key);
    const replies = (await pipeline.exec()) ?? [];
    assert.equal(replies.length, keys.length);
    keys.forEach((key, i) => {
      const [error, slot] = replies[i] as [Error | null, unknown];
      assert.equal(error, null);
      assert.equal(keySlot(key), slot, `slot of ${JSON.stringify(key.toString('latin1'))}`);
    });
  } finally {
    client.disconnect();
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keys sharing a hash tag share a partition and replicas in both strategies', () => {
  const nodes = Array.from({ length: 7 }, (_, i) => ({ id: `n${i}`, dc: 'dc1', rack: `r${i % 2}` }));
  for (const ring of [Ring.create({ nodes }), Ring.create({ nodes, strategy: 'random', tokensPerNode: 16 })]) {
    for (let i = 0; i < 200; i++) {
      const a = ring.partitionOf(Buffer.from(`{order:${i}}.items`));
      const b = ring.partitionOf(Buffer.from(`{order:${i}}.total`));
      assert.equal(a, b);
      assert.deepEqual(ring.replicasOf(Buffer.from(`{order:${i}}.items`)), ring.preferenceList(b));
    }
  }
});

test('hashedRange picks the first non-empty {tag}', () => {
  assert.deepEqual(hashedRange(Buffer.from('foo{bar}{zap}')), [4, 7]);
  assert.deepEqual(hashedRange(Buffer.from('foo{}{bar}')), [0, 10]);
  assert.deepEqual(hashedRange(Buffer.from('foo{{bar}}')), [4, 8]);
});
