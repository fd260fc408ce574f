/** The HTTP client SDK the CLI uses, against an in-process HTTP server over a scripted KvApi. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { RealClock, UnavailableError, NotFoundError, TimeoutError, silentLogger } from '../../src/core/index.ts';
import { HttpServer } from '../../src/api/http/index.ts';
import { RingkvHttpClient, encodeKey, errorFromBody } from '../../src/client/index.ts';
import { SingleNodeCluster } from '../../src/node/single-cluster.ts';
import { ScriptedKv } from '../api/http/scripted-kv.ts';

describe('RingkvHttpClient', () => {
  const kv = new ScriptedKv();
  let server: HttpServer;
  let client: RingkvHttpClient;

  before(async () => {
    server = new HttpServer({
      kv,
      cluster: new SingleNodeCluster({ id: 'n1', address: '', respAddress: null, httpAddress: null, dc: 'dc1', rack: 'r1' }),
      clock: new RealClock(),
      log: silentLogger,
      token: 't0k',
    });
    const { port } = await server.listen(0, '127.0.0.1');
    client = new RingkvHttpClient({ baseUrl: `http://127.0.0.1:${port}/`, token: 't0k' });
  });
  after(() => server.close());

  test('binary keys survive the round trip; put returns the context, get the siblings', async () => {
    const key = Uint8Array.from([0, 0x2f, 0xff, 0x25]);
    assert.equal(encodeKey(key), '%00%2F%FF%25');
    assert.equal(encodeKey('a b/é'), 'a%20b%2F%C3%A9');
    const context = await client.put(key, 'v', { ttlSeconds: 5, w: 'one' });
    assert.equal(context, Buffer.from([9, 9]).toString('base64'));
    assert.equal(kv.calls.at(-1)?.key, Buffer.from(key).toString('latin1'));
    const got = await client.get(key);
    assert.equal(got?.siblings.length, 1);
    assert.equal(Buffer.from(got?.siblings[0]?.value ?? []).toString(), 'v');
    assert.equal(got?.context, Buffer.from([1, 2, 3]).toString('base64'));
  });

  test('siblings with counters and tombstones come back typed; missing keys are undefined', async () => {
    kv.stored.set('multi', [
      { kind: 'counter', count: 9007199254740993n, expiresAtMs: null, timestampMs: 1, writer: 'a' },
      { kind: 'tombstone', expiresAtMs: null, timestampMs: 2, writer: 'b' },
    ]);
    const got = await client.get('multi');
    assert.deepEqual(got?.siblings.map((s) => [s.kind, s.count]), [['counter', 9007199254740993n], ['tombstone', undefined]]);
    assert.equal(await client.get('absent'), undefined);
  });

  test('incr and del; server errors come back as the typed class', async () => {
    assert.equal(await client.incr('n', 41n), 41n);
    await client.del('n', { context: 'AAAA' });
    kv.nextError = new UnavailableError('Only 1 of 2', { answered: 1, required: 2 });
    await assert.rejects(client.get('x'), (e: unknown) => e instanceof UnavailableError && e.answered === 1 && e.required === 2);
  });

  test('an unreachable node is UnavailableError naming the URL', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const dead = new RingkvHttpClient({ baseUrl: `http://127.0.0.1:${port}` });
    await assert.rejects(dead.cluster(), (e: unknown) => e instanceof UnavailableError && e.message.includes(`127.0.0.1:${port}`) && e.message.includes('ECONNREFUSED'));
  });

  test('errorFromBody keeps codes; HTTP-only codes keep their code in the message', () => {
    assert.ok(errorFromBody(404, { error: { code: 'RINGKV_NOT_FOUND', message: 'nope' } }) instanceof NotFoundError);
    assert.ok(errorFromBody(504, { error: { code: 'RINGKV_TIMEOUT', message: 'slow' } }) instanceof TimeoutError);
    assert.match(errorFromBody(413, { error: { code: 'RINGKV_PAYLOAD_TOO_LARGE', message: 'big' } }).message, /^RINGKV_PAYLOAD_TOO_LARGE: big$/);
    assert.match(errorFromBody(502, null).message, /HTTP 502/);
  });
});
