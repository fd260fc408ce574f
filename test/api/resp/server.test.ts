/**
 * RespServer over real sockets: authentication, RESP3, pipelining, inline
 * commands, limits, protocol errors that close only the offending
 * connection, ringkv's own commands and the typed-error mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect } from 'node:net';
import { RawClient, encodeCommand } from './raw-client.ts';
import type { Reply } from './raw-client.ts';
import { startServer } from './helpers.ts';

const bulk = (v: string): Reply => ({ t: 'bulk', v });
const ok: Reply = { t: 'simple', v: 'OK' };
const err = (v: string): Reply => ({ t: 'error', v });
const int = (n: number): Reply => ({ t: 'int', v: String(n) });

/** Raw bytes of everything the server sends until it closes or `ms` pass. */
function exchange(port: number, bytes: Buffer, ms = 2000): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closed: false });
    }, ms);
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true });
    });
    socket.on('error', () => {});
  });
}

test('requirepass and named users: NOAUTH, WRONGPASS, AUTH, HELLO AUTH', async () => {
  const s = await startServer({ auth: { password: 'sekret', users: { alice: 'wonder' } } });
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['GET', 'k']), err('NOAUTH Authentication required.'));
    assert.deepEqual(await c.send(['PING']), err('NOAUTH Authentication required.'));
    assert.deepEqual(await c.send(['AUTH', 'nope']), err('WRONGPASS invalid username-password pair or user is disabled.'));
    assert.deepEqual(await c.send(['AUTH', 'alice', 'sekret']), err('WRONGPASS invalid username-password pair or user is disabled.'));
    assert.deepEqual(await c.send(['HELLO', '3']), err('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time'));
    assert.deepEqual(await c.send(['AUTH', 'sekret']), ok);
    assert.deepEqual(await c.send(['SET', 'k', 'v']), ok);
    c.close();

    const alice = await RawClient.open(s.port);
    assert.deepEqual(await alice.send(['AUTH', 'alice', 'wonder']), ok);
    assert.deepEqual(await alice.send(['GET', 'k']), bulk('v'));
    alice.close();

    const hello = await RawClient.open(s.port);
    const reply = await hello.send(['HELLO', '3', 'AUTH', 'default', 'sekret', 'SETNAME', 'me']);
    assert.equal(reply.t, 'array');
    assert.deepEqual(await hello.send(['CLIENT', 'GETNAME']), bulk('me'));
    hello.close();

    // Before authenticating, only small commands are parsed (Redis's unauthenticated limits).
    const big = await exchange(s.port, encodeCommand(Array.from({ length: 20 }, () => 'x')));
    assert.equal(big.data, '-ERR Protocol error: unauthenticated multibulk length\r\n');
    assert.equal(big.closed, true);
  } finally {
    await s.close();
  }
});

test('AUTH without a configured password says how to fix the configuration', async () => {
  const s = await startServer();
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['AUTH', 'x']), err('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?'));
    // CONFIG SET requirepass protects new connections at once.
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'requirepass', 'pw']), ok);
    const d = await RawClient.open(s.port);
    assert.deepEqual(await d.send(['GET', 'k']), err('NOAUTH Authentication required.'));
    assert.deepEqual(await d.send(['AUTH', 'pw']), ok);
    assert.deepEqual(await d.send(['CONFIG', 'GET', 'requirepass']), { t: 'array', v: [bulk('requirepass'), bulk('pw')] });
    c.close();
    d.close();
  } finally {
    await s.close();
  }
});

test('HELLO 3 switches this connection to RESP3; HELLO 4 is refused', async () => {
  const s = await startServer();
  try {
    const three = await exchange(s.port, Buffer.concat([encodeCommand(['HELLO', '3']), encodeCommand(['GET', 'missing']), encodeCommand(['CONFIG', 'GET', 'maxclients'])]), 500);
    assert.match(three.data, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n\$7\r\nversion\r\n\$5\r\n7\.0\.0\r\n\$5\r\nproto\r\n:3\r\n\$2\r\nid\r\n:\d+\r\n/);
    assert.ok(three.data.endsWith('_\r\n%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n'), three.data);
    const two = await exchange(s.port, Buffer.concat([encodeCommand(['GET', 'missing']), encodeCommand(['HELLO', '4'])]), 500);
    assert.equal(two.data, '$-1\r\n-NOPROTO unsupported protocol version\r\n');
  } finally {
    await s.close();
  }
});

test('pipelined and inline commands are answered in order', async () => {
  const s = await startServer();
  try {
    const frames: Buffer[] = [];
    for (let i = 0; i < 500; i++) frames.push(encodeCommand(['INCR', 'counter']));
    frames.push(Buffer.from('SET "inline key" \'a b\'\r\nGET "inline key"\r\nGET counter\r\n'));
    const expected = Array.from({ length: 500 }, (_, i) => `:${i + 1}\r\n`).join('') + '+OK\r\n$3\r\na b\r\n$3\r\n500\r\n';
    const got = await exchange(s.port, Buffer.concat(frames), 1500);
    assert.equal(got.data, expected);
  } finally {
    await s.close();
  }
});

test('a protocol error answers -ERR Protocol error and closes only that connection', async () => {
  const s = await startServer();
  try {
    const bystander = await RawClient.open(s.port);
    assert.deepEqual(await bystander.send(['SET', 'safe', '1']), ok);
    const bad = await exchange(s.port, Buffer.from('*1\r\n$3\r\nGET\r\n*2\r\n+oops\r\n'));
    assert.equal(bad.data, "-ERR wrong number of arguments for 'get' command\r\n-ERR Protocol error: expected '$', got '+'\r\n");
    assert.equal(bad.closed, true);
    assert.deepEqual(await bystander.send(['GET', 'safe']), bulk('1'));
    assert.equal(s.server.stats().protocolErrors, 1);
    bystander.close();
  } finally {
    await s.close();
  }
});

test('fuzz: random and mutated frames never crash the server or disturb another client', async () => {
  const s = await startServer({ limits: { maxBulkBytes: 4096, maxArrayLength: 64, maxInlineBytes: 1024, maxCommandBytes: 16384 } });
  try {
    const control = await RawClient.open(s.port);
    const heapBefore = process.memoryUsage().heapUsed;
    const frame = fc.array(fc.oneof(fc.constantFrom('GET', 'SET', 'PING', 'INCR', 'DEL', 'k', 'v', '1'), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 5 }).map((a) => Buffer.from(encodeCommand(a)));
    const mutated = fc.tuple(frame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })).map(([f, flips]) => {
      for (const [p, b] of flips) f[p % f.length] = b;
      return f;
    });
    const garbage = fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((a) => Buffer.from(a));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(frame, mutated, garbage), { minLength: 1, maxLength: 8 }), async (parts) => {
        await exchange(s.port, Buffer.concat(parts), 80);
        n++;
        assert.deepEqual(await control.send(['SET', 'control', String(n)]), ok);
        assert.deepEqual(await control.send(['GET', 'control']), bulk(String(n)));
      }),
      { numRuns: 60 },
    );
    // Every fuzzing connection is gone; only the control client remains.
    for (let i = 0; i < 100 && s.server.stats().connectedClients > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.server.stats().connectedClients, 1);
    const grownBytes = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(grownBytes < 64 * 1024 * 1024, `heap grew by ${grownBytes} bytes`);
    control.close();
  } finally {
    await s.close();
  }
});

test('a client that does not read its replies is throttled, and cut off when one reply exceeds the output limit', async () => {
  const s = await startServer({ limits: { maxPendingOutputBytes: 2 * 1024 * 1024, outputHighWaterBytes: 64 * 1024 } });
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['SET', 'big', 'x'.repeat(1024 * 1024)]), ok);
    c.close();
    const greedy = connect(s.port, '127.0.0.1');
    greedy.pause();
    greedy.on('error', () => {});
    // 200 replies of 1 MiB, never read: the server stops reading instead of buffering 200 MiB.
    greedy.write(Buffer.concat(Array.from({ length: 200 }, () => encodeCommand(['GET', 'big']))));
    await new Promise((r) => setTimeout(r, 1000));
    const written = s.server.stats().netOutputBytes;
    assert.ok(written < 32 * 1024 * 1024, `wrote ${written} bytes to a client that reads nothing`);
    const other = await RawClient.open(s.port);
    assert.deepEqual(await other.send(['PING']), { t: 'simple', v: 'PONG' });
    greedy.destroy();
    // One reply of 20 MiB is more than the 2 MiB limit: that client is disconnected.
    const mget = connect(s.port, '127.0.0.1');
    mget.pause();
    mget.on('error', () => {});
    const closed = new Promise<void>((resolve) => mget.on('close', () => resolve()));
    mget.write(encodeCommand(['MGET', ...Array.from({ length: 20 }, () => 'big')]));
    for (let i = 0; i < 500 && s.server.stats().connectedClients > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.server.stats().connectedClients, 1);
    // A paused socket only notices the reset once it reads again.
    mget.resume();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('not disconnected')), 10_000)))]);
    clearTimeout(timer);
    assert.deepEqual(await other.send(['PING']), { t: 'simple', v: 'PONG' });
    other.close();
  } finally {
    await s.close();
  }
});

test('QUIT answers OK and closes; maxclients refuses the next connection', async () => {
  const s = await startServer({ settingsInit: { maxclients: '2' } });
  try {
    const q = await exchange(s.port, Buffer.concat([encodeCommand(['QUIT']), encodeCommand(['PING'])]));
    assert.deepEqual(q, { data: '+OK\r\n', closed: true });
    // The client saw the close; wait until the server has counted it too.
    for (let i = 0; i < 100 && s.server.stats().connectedClients > 0; i++) await new Promise((r) => setTimeout(r, 10));
    const a = await RawClient.open(s.port);
    const b = await RawClient.open(s.port);
    await a.send(['PING']);
    await b.send(['PING']);
    const third = await exchange(s.port, encodeCommand(['PING']));
    assert.deepEqual(third, { data: '-ERR max number of clients reached\r\n', closed: true });
    a.close();
    b.close();
  } finally {
    await s.close();
  }
});

test('RINGKV.CONSISTENCY: per-connection levels reach KvApi; an unreachable quorum maps to -UNAVAILABLE', async () => {
  const s = await startServer();
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['SET', 'k', 'v']), ok);
    assert.deepEqual(await c.send(['RINGKV.CONSISTENCY', 'R', '2', 'W', 'all', 'STRICT']), ok);
    assert.deepEqual(await c.send(['RINGKV.CONSISTENCY']), { t: 'array', v: [bulk('r'), bulk('2'), bulk('w'), bulk('all'), bulk('quorum'), bulk('strict')] });
    const failed = await c.send(['GET', 'k']);
    assert.equal(failed.t, 'error');
    assert.match((failed as { v: string }).v, /^UNAVAILABLE Cannot read: only 1 of 2 replicas answered/);
    // Another connection keeps the node's defaults.
    const d = await RawClient.open(s.port);
    assert.deepEqual(await d.send(['GET', 'k']), bulk('v'));
    assert.deepEqual(await c.send(['RINGKV.CONSISTENCY', 'DEFAULT']), ok);
    assert.deepEqual(await c.send(['GET', 'k']), bulk('v'));
    assert.deepEqual(await c.send(['RINGKV.CONSISTENCY', 'R', 'most']), err('ERR R must be one, quorum, all, local_quorum or a number of replicas from 1 to 999, not "most"'));
    c.close();
    d.close();
  } finally {
    await s.close();
  }
});

test('RINGKV.GETALL / RINGKV.PUT: blind writes become siblings, a write with the context resolves them', async () => {
  const s = await startServer();
  try {
    const c = await RawClient.open(s.port);
    const first = await c.send(['RINGKV.PUT', 'doc', 'a', '']);
    assert.equal(first.t, 'bulk');
    await c.send(['RINGKV.PUT', 'doc', 'b', '']);
    const all = await c.send(['RINGKV.GETALL', 'doc']);
    assert.equal(all.t, 'array');
    const [, context, , siblings] = (all as { v: Reply[] }).v as [Reply, Reply, Reply, Reply];
    assert.equal((siblings as { v: Reply[] }).v.length, 2);
    // RESP's GET shows the deterministic winner: the later write.
    assert.deepEqual(await c.send(['GET', 'doc']), bulk('b'));
    assert.equal((await c.send(['RINGKV.PUT', 'doc', 'merged', (context as { v: string }).v])).t, 'bulk');
    const after = (await c.send(['RINGKV.GETALL', 'doc'])) as { v: Reply[] };
    assert.equal((after.v[3] as { v: Reply[] }).v.length, 1);
    assert.deepEqual(await c.send(['GET', 'doc']), bulk('merged'));
    // A plain SET reads first and supersedes every sibling.
    await c.send(['RINGKV.PUT', 'doc', 'again', '']);
    assert.deepEqual(await c.send(['SET', 'doc', 'one']), ok);
    assert.equal((((await c.send(['RINGKV.GETALL', 'doc'])) as { v: Reply[] }).v[3] as { v: Reply[] }).v.length, 1);
    assert.deepEqual(await c.send(['RINGKV.PUT', 'doc', 'x', 'not base64!']), err('ERR the context must be the base64 text RINGKV.GETALL returned, or "" for a blind write'));
    const replicas = (await c.send(['RINGKV.REPLICAS', 'doc'])) as { v: Reply[] };
    const slot = await c.send(['CLUSTER', 'KEYSLOT', 'doc']);
    assert.equal(slot.t, 'int');
    assert.deepEqual(replicas.v.slice(0, 2), [bulk('slot'), slot]);
    assert.equal(((await c.send(['RINGKV.NODES'])) as { v: Reply[] }).v.length, 1);
    c.close();
  } finally {
    await s.close();
  }
});

test('command table: arity, subcommands, COMMAND INFO/DOCS, CONFIG SET errors, value limit, onCommand, SLOWLOG, CLIENT', async () => {
  const seen: Array<[string, boolean]> = [];
  const s = await startServer({ onCommand: (name, _ms, success) => seen.push([name, success]) });
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['CONFIG', 'GET']), err("ERR wrong number of arguments for 'config|get' command"));
    assert.deepEqual(await c.send(['CONFIG']), err("ERR wrong number of arguments for 'config' command"));
    assert.deepEqual(await c.send(['CONFIG', 'bogus']), err("ERR unknown subcommand 'bogus'. Try CONFIG HELP."));
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'nosuch', '1']), err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"));
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'maxclients', 'many']), err('ERR CONFIG SET failed (possibly related to argument \'maxclients\') - Setting maxclients must be an integer, not "many"'));
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'wal-sync', 'always']), err('ERR CONFIG SET failed (possibly related to argument \'wal-sync\') - Setting wal-sync is fixed when the node starts and cannot change at run time'));
    assert.deepEqual(await c.send(['CONFIG', 'GET', 'save']), { t: 'array', v: [bulk('save'), bulk('')] });
    assert.deepEqual(await c.send(['CONFIG', 'GET', 'nosuch']), { t: 'array', v: [] });
    const time = (await c.send(['TIME'])) as { v: Array<{ v: string }> };
    assert.ok(Math.abs(Number(time.v[0]?.v) - Date.now() / 1000) < 5);
    assert.ok(Number(time.v[1]?.v) >= 0 && Number(time.v[1]?.v) < 1_000_000);
    assert.deepEqual(await c.send(['SET', 'scan:me', '1']), ok);
    const scanned = (await c.send(['SCAN', '0', 'COUNT', '1000000', 'MATCH', 'scan:*'])) as { v: Reply[] };
    assert.deepEqual(scanned.v, [bulk('0'), { t: 'array', v: [bulk('scan:me')] }]);
    assert.deepEqual(await c.send(['SCAN', 'nope']), err('ERR invalid cursor'));
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'max-value-bytes', '10']), ok);
    assert.deepEqual(await c.send(['SET', 'k', 'x'.repeat(11)]), err('ERR Cannot write a value of 11 bytes: the limit is 10 bytes (max-value-bytes)'));
    const info = (await c.send(['COMMAND', 'INFO', 'set', 'nosuch'])) as { v: Reply[] };
    assert.deepEqual((info.v[0] as { v: Reply[] }).v.slice(0, 6), [bulk('set'), int(-3), { t: 'array', v: [{ t: 'simple', v: 'write' }, { t: 'simple', v: 'denyoom' }] }, int(1), int(1), int(1)]);
    assert.deepEqual(info.v[1], { t: 'null' });
    const docs = (await c.send(['COMMAND', 'DOCS', 'get'])) as { v: Reply[] };
    assert.deepEqual(docs.v, [bulk('get'), { t: 'array', v: [bulk('summary'), bulk('Returns the string value of a key.'), bulk('since'), bulk('1.0.0'), bulk('group'), bulk('string')] }]);
    assert.deepEqual(await c.send(['CLIENT', 'SETNAME', 'bad name']), err('ERR Client names cannot contain spaces, newlines or special characters.'));
    assert.deepEqual(await c.send(['CLIENT', 'SETNAME', 'tester']), ok);
    const line = (await c.send(['CLIENT', 'INFO'])) as { v: string };
    assert.match(line.v, /^id=\d+ addr=127\.0\.0\.1:\d+ .* name=tester .* cmd=client\|info .*resp=2/);
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'slowlog-log-slower-than', '0']), ok);
    await c.send(['PING']);
    const len = (await c.send(['SLOWLOG', 'LEN'])) as { v: string };
    assert.ok(Number(len.v) >= 1);
    assert.ok(seen.some(([name, success]) => name === 'config|set' && !success));
    assert.ok(seen.some(([name, success]) => name === 'ping' && success));
    c.close();
  } finally {
    await s.close();
  }
});

test('CONFIG SET proto-max-bulk-len applies to the parser of every connection', async () => {
  const s = await startServer();
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['CONFIG', 'SET', 'proto-max-bulk-len', '1024']), ok);
    const big = await exchange(s.port, encodeCommand(['SET', 'k', 'x'.repeat(2000)]));
    assert.deepEqual(big, { data: '-ERR Protocol error: invalid bulk length\r\n', closed: true });
    assert.deepEqual(await c.send(['SET', 'k', 'x'.repeat(1000)]), ok);
    c.close();
  } finally {
    await s.close();
  }
});

test('command names: any case, more distinct names than a connection matches by bytes, and near misses', async () => {
  const s = await startServer();
  try {
    const c = await RawClient.open(s.port);
    assert.deepEqual(await c.send(['SET', 'k', 'v']), ok);
    // Cycles through more names than the connection remembers, in mixed case, in one pipeline and one by one.
    const names = ['GET', 'get', 'GeT', 'STRLEN', 'strlen', 'EXISTS', 'TYPE', 'gET'];
    const expected = (name: string): Reply =>
      name.toLowerCase() === 'get' ? { t: 'bulk', v: 'v' } : name.toLowerCase() === 'strlen' ? { t: 'int', v: '1' } : name === 'EXISTS' ? { t: 'int', v: '1' } : { t: 'simple', v: 'string' };
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(await c.sendMany(names.map((n) => [n, 'k'])), names.map(expected));
      for (const n of names) assert.deepEqual(await c.send([n, 'k']), expected(n));
    }
    // Same length as a known name, one byte off: still unknown, and never taken for GET.
    for (const n of ['GEX', 'GETT', 'GE', 'SET\u0000']) {
      const reply = await c.send([n, 'k']);
      assert.equal(reply.t, 'error');
      assert.match((reply as { v: string }).v, /^ERR unknown command/);
    }
    assert.deepEqual(await c.send(['GET', 'k']), { t: 'bulk', v: 'v' });
    c.close();
  } finally {
    await s.close();
  }
});
