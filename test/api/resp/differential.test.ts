/**
 * Differential test: random command sequences sent to a real redis-server
 * and to ringkv's RespServer (LocalKv over MemoryEngine) must get the same
 * replies, byte for byte after decoding, except where a reply depends on time
 * (TTLs, compared within a tolerance; a GT/LT expiry whose two deadlines are
 * within it, see deadlineRace) or on hash order (KEYS and SCAN, compared as
 * sets). Set RINGKV_DIFF_RUNS for a longer sweep.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RawClient } from './raw-client.ts';
import type { Reply } from './raw-client.ts';
import { startRedis, startServer } from './helpers.ts';
import type { RedisProcess, Started } from './helpers.ts';

let redis: RedisProcess;
let ringkv: Started;
let redisClient: RawClient;
let ringkvClient: RawClient;

before(async () => {
  redis = await startRedis();
  ringkv = await startServer();
  redisClient = await RawClient.open(redis.port);
  ringkvClient = await RawClient.open(ringkv.port);
});

after(async () => {
  redisClient?.close();
  ringkvClient?.close();
  await ringkv?.close();
  await redis?.stop();
});

const key = fc.constantFrom('k1', 'k2', 'k3', '{t}k4', '');
const value = fc.oneof(fc.constantFrom('v', 'hello', '', '10', '-7', '0', '3.5', '007', 'x y', '9223372036854775807'), fc.string({ maxLength: 6 }));
const int = fc.constantFrom('0', '1', '-1', '5', '100', '-100', 'abc', '9223372036854775807', '-9223372036854775808', '1.5', '');
const float = fc.constantFrom('1.5', '0.1', '-2.25', '10', 'abc', '1e2', '0', '-0.5', '3');
const seconds = fc.constantFrom('100', '1000', '-5', '0', 'x', '50');
const millis = fc.constantFrom('100000', '500000', '-1', '0');
const unixSeconds = fc.constantFrom('1', '4102444800', '4102444900');
const unixMillis = fc.constantFrom('1', '4102444800000', '4102444900000');
const expireOpt = fc.constantFrom([], ['NX'], ['XX'], ['GT'], ['LT'], ['NX', 'XX'], ['GT', 'LT'], ['FOO']);
const setOpts = fc.constantFrom(
  ['NX'], ['XX'], ['GET'], ['EX', '100'], ['PX', '100000'], ['KEEPTTL'], ['EX', '0'], ['NX', 'GET'], ['XX', 'GET', 'EX', '50'],
  ['EXAT', '4102444800'], ['PXAT', '1'], ['KEEPTTL', 'EX', '10'], ['EX', 'abc'], ['NX', 'XX'], ['EX'], ['BOGUS'], ['ex', '20', 'nx'],
);
const getexOpts = fc.constantFrom([], ['EX', '100'], ['PX', '200000'], ['PERSIST'], ['EXAT', '4102444800'], ['PXAT', '1'], ['EX', '0'], ['PERSIST', 'EX', '1'], ['KEEPTTL']);
const pattern = fc.constantFrom('*', 'k*', '*4', 'k[12]', '{t}*', '?1', 'k[^1]', 'nomatch');
const index = fc.constantFrom('0', '1', '-1', '2', '-3', '100', '-100', 'x');

type Cmd = readonly string[];

const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => ['SET', k, v]),
  fc.tuple(key, value, setOpts).map(([k, v, o]) => ['SET', k, v, ...o]),
  key.map((k) => ['GET', k]),
  fc.tuple(key, value).map(([k, v]) => ['SETNX', k, v]),
  fc.tuple(key, seconds, value).map(([k, s, v]) => ['SETEX', k, s, v]),
  fc.tuple(key, millis, value).map(([k, s, v]) => ['PSETEX', k, s, v]),
  fc.tuple(key, getexOpts).map(([k, o]) => ['GETEX', k, ...o]),
  key.map((k) => ['GETDEL', k]),
  fc.tuple(key, value).map(([k, v]) => ['GETSET', k, v]),
  fc.tuple(key, key, key).map(([a, b, c]) => ['MGET', a, b, c]),
  fc.tuple(key, value, key, value).map(([a, x, b, y]) => ['MSET', a, x, b, y]),
  fc.tuple(key, value, key, value).map(([a, x, b, y]) => ['MSETNX', a, x, b, y]),
  fc.tuple(key, value).map(([k, v]) => ['APPEND', k, v]),
  key.map((k) => ['STRLEN', k]),
  fc.tuple(key, index, index).map(([k, a, b]) => ['GETRANGE', k, a, b]),
  fc.tuple(key, fc.constantFrom('0', '1', '3', '-1', 'x'), value).map(([k, o, v]) => ['SETRANGE', k, o, v]),
  fc.tuple(key, key).map(([a, b]) => ['DEL', a, b]),
  key.map((k) => ['UNLINK', k]),
  fc.tuple(key, key).map(([a, b]) => ['EXISTS', a, b]),
  key.map((k) => ['TYPE', k]),
  pattern.map((p) => ['KEYS', p]),
  pattern.map((p) => ['SCANALL', p]),
  fc.tuple(key, key).map(([a, b]) => ['RENAME', a, b]),
  fc.tuple(key, key).map(([a, b]) => ['RENAMENX', a, b]),
  fc.tuple(key, key, fc.constantFrom([], ['REPLACE'], ['DB', '0'], ['DB', '1'], ['FOO'])).map(([a, b, o]) => ['COPY', a, b, ...o]),
  fc.tuple(key, seconds, expireOpt).map(([k, s, o]) => ['EXPIRE', k, s, ...o]),
  fc.tuple(key, millis, expireOpt).map(([k, s, o]) => ['PEXPIRE', k, s, ...o]),
  fc.tuple(key, unixSeconds, expireOpt).map(([k, s, o]) => ['EXPIREAT', k, s, ...o]),
  fc.tuple(key, unixMillis, expireOpt).map(([k, s, o]) => ['PEXPIREAT', k, s, ...o]),
  key.map((k) => ['TTL', k]),
  key.map((k) => ['PTTL', k]),
  key.map((k) => ['PERSIST', k]),
  key.map((k) => ['EXPIRETIME', k]),
  key.map((k) => ['PEXPIRETIME', k]),
  key.map((k) => ['INCR', k]),
  key.map((k) => ['DECR', k]),
  fc.tuple(key, int).map(([k, n]) => ['INCRBY', k, n]),
  fc.tuple(key, int).map(([k, n]) => ['DECRBY', k, n]),
  fc.tuple(key, float).map(([k, f]) => ['INCRBYFLOAT', k, f]),
  fc.constant(['DBSIZE']),
  value.map((v) => ['ECHO', v]),
  fc.constantFrom(['PING'], ['PING', 'hi'], ['PING', 'a', 'b'], ['SELECT', '0'], ['SELECT', '1'], ['SELECT', 'x']),
  fc.constantFrom(['GET'], ['SET', 'k1'], ['EXISTS'], ['TTL'], ['MSET', 'k1'], ['MSET', 'k1', 'v', 'k2'], ['GETRANGE', 'k1', '0']),
  fc.tuple(fc.constantFrom('LPUSH', 'SADD', 'HSET', 'ZADD', 'XADD', 'nosuchcmd'), key, value).map(([c, k, v]) => [c, k, v]),
  fc.constantFrom(['CONFIG', 'NOSUCH'], ['CLIENT', 'NOSUCH'], ['COMMAND', 'NOSUCH']),
  fc.constantFrom(['EXISTS', 'k1', 'k1', 'k2'], ['DEL', 'k1', 'k1']),
);

/** SCAN to completion (both servers' cursors are opaque), as a sorted set of keys. */
async function scanAll(client: RawClient, p: string): Promise<Reply> {
  const seen = new Set<string>();
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const r = await client.send(['SCAN', cursor, 'MATCH', p, 'COUNT', '3']);
    if (r.t !== 'array') return r;
    const [c, keys] = r.v as [Reply, Reply];
    if (c.t !== 'bulk' || keys.t !== 'array') return r;
    for (const k of keys.v) if (k.t === 'bulk') seen.add(k.v);
    cursor = c.v;
    if (cursor === '0') break;
  }
  return { t: 'array', v: [...seen].sort().map((v) => ({ t: 'bulk', v })) };
}

/** Commands of Redis types ringkv does not hold: redis-server runs them, ringkv must refuse them as unknown. */
const otherTypes = new Set(['LPUSH', 'SADD', 'HSET', 'ZADD', 'XADD']);

async function run(client: RawClient, cmd: Cmd): Promise<Reply> {
  if (otherTypes.has(cmd[0] as string) && client === redisClient) {
    return { t: 'error', v: `ERR unknown command '${cmd[0]}', with args beginning with: ${cmd.slice(1).map((a) => `'${a}' `).join('')}` };
  }
  // ringkv has database 0 only; redis-server would switch to (or copy into) database 1.
  const otherDb = (cmd[0] === 'SELECT' && cmd[1] === '1') || (cmd[0] === 'COPY' && cmd[4] === '1');
  if (otherDb && client === redisClient) return { t: 'error', v: 'ERR DB index is out of range' };
  // Redis counts keys that expired but were not yet reclaimed; touching them first makes it reclaim them.
  if (cmd[0] === 'DBSIZE') await client.send(['EXISTS', 'k1', 'k2', 'k3', '{t}k4', '']);
  if (cmd[0] === 'SCANALL') return scanAll(client, cmd[1] as string);
  const reply = await client.send(cmd);
  if (cmd[0] === 'KEYS' && reply.t === 'array') {
    return { t: 'array', v: [...reply.v].sort((a, b) => ((a as { v: string }).v < (b as { v: string }).v ? -1 : 1)) };
  }
  return reply;
}

const ttlTolerance: Record<string, number> = { TTL: 1, PTTL: 1500, EXPIRETIME: 2, PEXPIRETIME: 2000 };

function sameReply(cmd: Cmd, a: Reply, b: Reply): boolean {
  const tolerance = ttlTolerance[cmd[0] as string];
  if (tolerance !== undefined && a.t === 'int' && b.t === 'int') {
    const x = Number(a.v);
    const y = Number(b.v);
    if (x < 0 || y < 0) return x === y;
    return Math.abs(x - y) <= tolerance;
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A relative EXPIRE or PEXPIRE with GT or LT compares the key's deadline with
 * now + the duration. When those are within the PTTL tolerance (SETEX k 100 v,
 * then PEXPIRE k 100000 GT), which is later depends on whether a millisecond
 * passed between the two commands on each server, so 0 and 1 are both right.
 * Asks redis-server (PTTL reads only) before the command runs there.
 */
async function deadlineRace(cmd: Cmd): Promise<boolean> {
  const name = cmd[0];
  if (name !== 'EXPIRE' && name !== 'PEXPIRE') return false;
  const options = cmd.slice(3).map((o) => o.toUpperCase());
  if (!options.includes('GT') && !options.includes('LT')) return false;
  const durationMs = Number(cmd[2]) * (name === 'EXPIRE' ? 1000 : 1);
  if (!Number.isFinite(durationMs)) return false;
  const pttl = await redisClient.send(['PTTL', cmd[1] as string]);
  return pttl.t === 'int' && Number(pttl.v) >= 0 && Math.abs(Number(pttl.v) - durationMs) <= (ttlTolerance['PTTL'] as number);
}

/** sameReply, or both answers 0/1 to a command deadlineRace found racing. */
function agrees(cmd: Cmd, raced: boolean, a: Reply, b: Reply): boolean {
  if (sameReply(cmd, a, b)) return true;
  const bit = (r: Reply): boolean => r.t === 'int' && (r.v === '0' || r.v === '1');
  return raced && bit(a) && bit(b);
}

const runs = Number(process.env['RINGKV_DIFF_RUNS'] ?? 200);

test('ringkv answers random command sequences exactly as redis-server does', async () => {
  let lastFailure = '';
  const fail = (message: string): never => {
    lastFailure = message;
    assert.fail(message);
  };
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 30 }), async (cmds) => {
      await redisClient.send(['FLUSHALL']);
      await ringkvClient.send(['FLUSHALL']);
      for (const cmd of cmds) {
        const raced = await deadlineRace(cmd);
        const expected = await run(redisClient, cmd);
        const actual = await run(ringkvClient, cmd);
        if (!agrees(cmd, raced, expected, actual)) {
          fail(`${cmd.join(' ')}\n  redis:  ${JSON.stringify(expected)}\n  ringkv: ${JSON.stringify(actual)}`);
        }
      }
      // The final state must agree too: every key, its value and its TTL.
      for (const k of ['k1', 'k2', 'k3', '{t}k4', '']) {
        for (const cmd of [['GET', k], ['TTL', k]]) {
          const expected = await run(redisClient, cmd);
          const actual = await run(ringkvClient, cmd);
          if (!sameReply(cmd, expected, actual)) fail(`final ${cmd.join(' ')}: redis ${JSON.stringify(expected)} ringkv ${JSON.stringify(actual)}`);
        }
      }
    }),
    { numRuns: runs, seed: process.env['RINGKV_DIFF_SEED'] === undefined ? undefined : Number(process.env['RINGKV_DIFF_SEED']) },
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nLast mismatch: ${lastFailure}`);
  });
});

test('the same sequences sent to ringkv as one pipeline get the same replies (concurrent pipelined commands keep their order)', async () => {
  let lastFailure = '';
  await fc
    .assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 40 }), async (cmds) => {
        await redisClient.send(['FLUSHALL']);
        await ringkvClient.send(['FLUSHALL']);
        const wire: Cmd[] = [];
        for (const cmd of cmds) {
          if (cmd[0] === 'SCANALL' || cmd[0] === 'KEYS') continue;
          if (cmd[0] === 'DBSIZE') wire.push(['EXISTS', 'k1', 'k2', 'k3', '{t}k4', '']);
          wire.push(cmd);
        }
        const expected: Reply[] = [];
        const raced: boolean[] = [];
        for (const cmd of wire) {
          raced.push(await deadlineRace(cmd));
          expected.push(await run(redisClient, cmd));
        }
        const actual = await ringkvClient.sendMany(wire);
        wire.forEach((cmd, i) => {
          const e = expected[i] as Reply;
          const a = actual[i] as Reply;
          if (!agrees(cmd, raced[i] === true, e, a)) {
            lastFailure = `${cmd.join(' ')}: redis ${JSON.stringify(e)} ringkv ${JSON.stringify(a)}`;
            assert.fail(lastFailure);
          }
        });
      }),
      { numRuns: runs },
    )
    .catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nLast mismatch: ${lastFailure}`);
    });
});
