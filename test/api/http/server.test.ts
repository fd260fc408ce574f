/**
 * The HTTP front end over real sockets (node:http server on 127.0.0.1:0,
 * fetch as the client), with a scripted KvApi so every status and shape is
 * forced deliberately: siblings, tombstones, each typed error.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConflictError,
  InvalidArgumentError,
  OverloadedError,
  RateLimitedError,
  RealClock,
  TimeoutError,
  UnavailableError,
  silentLogger,
} from '../../../src/core/index.ts';
import { HttpServer, NodeMetrics } from '../../../src/api/http/index.ts';
import { Settings } from '../../../src/api/settings.ts';
import { SingleNodeCluster } from '../../../src/node/single-cluster.ts';
import { ScriptedKv } from './scripted-kv.ts';

interface Harness {
  kv: ScriptedKv;
  server: HttpServer;
  base: string;
  metrics: NodeMetrics;
}

async function startServer(options: { token?: string; maxValueBytes?: number } = {}): Promise<Harness> {
  const kv = new ScriptedKv();
  const cluster = new SingleNodeCluster({ id: 'n1', address: '127.0.0.1:1', respAddress: null, httpAddress: null, dc: 'dc1', rack: 'r1' });
  const metrics = new NodeMetrics({ processMetrics: false });
  const server = new HttpServer({
    kv,
    cluster,
    clock: new RealClock(),
    log: silentLogger,
    metrics,
    localStats: () => ({ keys: kv.stored.size }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.maxValueBytes === undefined ? {} : { maxValueBytes: () => options.maxValueBytes as number }),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { kv, server, base: `http://127.0.0.1:${port}`, metrics };
}

async function errorOf(res: Response): Promise<{ code: string; message: string; answered?: number; required?: number }> {
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  return body.error;
}

describe('HTTP key-value routes', () => {
  let h: Harness;
  before(async () => { h = await startServer(); });
  after(async () => { await h.server.close(); });

  test('PUT stores the raw body and returns the new context; GET returns the bytes with context', async () => {
    const body = Uint8Array.from([0, 255, 1, 2]);
    const put = await fetch(`${h.base}/v1/kv/bin%00key?w=quorum&ttl=60`, { method: 'PUT', body });
    assert.equal(put.status, 204);
    assert.equal(put.headers.get('x-ringkv-context'), Buffer.from([9, 9]).toString('base64'));
    const call = h.kv.calls.at(-1);
    assert.equal(call?.key, 'bin\u0000key');
    assert.equal((call?.options as { w?: unknown }).w, 'quorum');
    const expires = (call?.options as { expiresAtMs?: number }).expiresAtMs ?? 0;
    assert.ok(Math.abs(expires - (Date.now() + 60_000)) < 5_000, 'ttl is seconds from now');

    const get = await fetch(`${h.base}/v1/kv/bin%00key?r=2&strict=true`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'application/octet-stream');
    assert.equal(get.headers.get('x-ringkv-context'), Buffer.from([1, 2, 3]).toString('base64'));
    assert.ok(get.headers.get('x-ringkv-expires-at'));
    assert.deepEqual(new Uint8Array(await get.arrayBuffer()), body);
    const read = h.kv.calls.at(-1)?.options as { r?: unknown; strict?: unknown };
    assert.equal(read.r, 2);
    assert.equal(read.strict, true);
  });

  test('PUT passes the context header back to the store', async () => {
    const ctx = Buffer.from('context-bytes').toString('base64');
    const res = await fetch(`${h.base}/v1/kv/k1`, { method: 'PUT', body: 'v', headers: { 'x-ringkv-context': ctx } });
    assert.equal(res.status, 204);
    assert.deepEqual(Buffer.from((h.kv.calls.at(-1)?.options as { context: Uint8Array }).context).toString(), 'context-bytes');
  });

  test('GET of a key with siblings answers 300 with every sibling and one context', async () => {
    h.kv.stored.set('conflict', [
      { kind: 'value', value: Buffer.from('left'), expiresAtMs: null, timestampMs: 10, writer: 'n1' },
      { kind: 'value', value: Buffer.from('right'), expiresAtMs: 99, timestampMs: 11, writer: 'n2' },
      { kind: 'tombstone', expiresAtMs: null, timestampMs: 12, writer: 'n3' },
    ]);
    const res = await fetch(`${h.base}/v1/kv/conflict`);
    assert.equal(res.status, 300);
    const body = (await res.json()) as { context: string; siblings: Array<Record<string, unknown>> };
    assert.equal(body.context, Buffer.from([1, 2, 3]).toString('base64'));
    assert.deepEqual(body.siblings, [
      { kind: 'value', value: Buffer.from('left').toString('base64'), contentType: 'application/octet-stream', expiresAtMs: null, timestampMs: 10, writer: 'n1' },
      { kind: 'value', value: Buffer.from('right').toString('base64'), contentType: 'application/octet-stream', expiresAtMs: 99, timestampMs: 11, writer: 'n2' },
      { kind: 'tombstone', expiresAtMs: null, timestampMs: 12, writer: 'n3' },
    ]);
  });

  test('Accept: application/json returns the sibling shape for a single version; counters read as decimal text', async () => {
    h.kv.stored.set('c', [{ kind: 'counter', count: 12345678901234567890n, expiresAtMs: null, timestampMs: 1, writer: 'n1' }]);
    const raw = await fetch(`${h.base}/v1/kv/c`);
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), '12345678901234567890');
    assert.equal(raw.headers.get('x-ringkv-kind'), 'counter');
    const js = await fetch(`${h.base}/v1/kv/c`, { headers: { accept: 'application/json' } });
    assert.equal(js.status, 200);
    const body = (await js.json()) as { siblings: Array<{ kind: string; count: string }> };
    assert.deepEqual(body.siblings.map((s) => [s.kind, s.count]), [['counter', '12345678901234567890']]);
  });

  test('a missing key is 404 RINGKV_NOT_FOUND; a deleted one also carries its context', async () => {
    const missing = await fetch(`${h.base}/v1/kv/nope`);
    assert.equal(missing.status, 404);
    assert.equal((await errorOf(missing)).code, 'RINGKV_NOT_FOUND');
    assert.equal(missing.headers.get('x-ringkv-context'), null);
    const del = await fetch(`${h.base}/v1/kv/gone`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    const after = await fetch(`${h.base}/v1/kv/gone`);
    assert.equal(after.status, 404);
    assert.equal(after.headers.get('x-ringkv-context'), Buffer.from([1, 2, 3]).toString('base64'));
    await after.body?.cancel();
  });

  test('POST incr adds by (default 1) and returns the value as a decimal string', async () => {
    let res = await fetch(`${h.base}/v1/kv/hits/incr`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { value: '1' });
    res = await fetch(`${h.base}/v1/kv/hits/incr?by=-11`, { method: 'POST' });
    assert.deepEqual(await res.json(), { value: '-10' });
    res = await fetch(`${h.base}/v1/kv/hits/incr?by=1.5`, { method: 'POST' });
    assert.equal(res.status, 400);
    assert.match((await errorOf(res)).message, /by=/);
  });

  test('bad input is 400 with a message naming what was wrong', async () => {
    const cases: Array<[string, RequestInit | undefined, RegExp]> = [
      ['/v1/kv/a?r=most', undefined, /r="most"/],
      ['/v1/kv/a?strict=maybe', undefined, /strict/],
      ['/v1/kv/a?ttl=-1', { method: 'PUT', body: 'x' }, /ttl/],
      ['/v1/kv/a?ttl=0', { method: 'PUT', body: 'x' }, /ttl/],
      ['/v1/kv/a?colour=red', undefined, /Unknown query parameter "colour"/],
      ['/v1/kv/a?r=one&r=all', undefined, /given twice/],
      ['/v1/kv/a?w=one', undefined, /Unknown query parameter "w"/],
      ['/v1/kv/%zz', undefined, /two hex digits/],
      [`/v1/kv/${'k'.repeat(9000)}`, undefined, /limit is 8192/],
      ['/v1/kv/a', { method: 'PUT', body: 'x', headers: { 'x-ringkv-context': 'not base64!' } }, /base64/],
    ];
    for (const [path, init, pattern] of cases) {
      const res = await fetch(`${h.base}${path}`, init);
      assert.equal(res.status, 400, path);
      const error = await errorOf(res);
      assert.equal(error.code, 'RINGKV_INVALID_ARGUMENT', path);
      assert.match(error.message, pattern, path);
    }
  });

  test('unknown routes are 404 and wrong methods 405 with Allow', async () => {
    const res = await fetch(`${h.base}/v2/things`);
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'RINGKV_NOT_FOUND');
    const wrong = await fetch(`${h.base}/v1/kv/a`, { method: 'POST' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET,PUT,DELETE');
    assert.equal((await errorOf(wrong)).code, 'RINGKV_METHOD_NOT_ALLOWED');
  });

  test('typed errors map to statuses with stable codes', async () => {
    const cases: Array<[Error, number, string]> = [
      [new UnavailableError('Only 1 of 2 replicas answered', { answered: 1, required: 2 }), 503, 'RINGKV_UNAVAILABLE'],
      [new TimeoutError('No quorum within 5000 ms'), 504, 'RINGKV_TIMEOUT'],
      [new RateLimitedError('Slow down', 2500), 429, 'RINGKV_RATE_LIMITED'],
      [new OverloadedError('Queue full'), 503, 'RINGKV_OVERLOADED'],
      [new ConflictError('Too many siblings'), 409, 'RINGKV_CONFLICT'],
      [new InvalidArgumentError('Cannot write key as it is 600000 bytes: the limit is 524288'), 400, 'RINGKV_INVALID_ARGUMENT'],
      [new Error('boom'), 500, 'RINGKV_INTERNAL'],
    ];
    for (const [error, status, code] of cases) {
      h.kv.nextError = error;
      const res = await fetch(`${h.base}/v1/kv/x`);
      assert.equal(res.status, status, code);
      const body = await errorOf(res);
      assert.equal(body.code, code);
      if (code === 'RINGKV_UNAVAILABLE') {
        assert.equal(body.answered, 1);
        assert.equal(body.required, 2);
      }
      if (code === 'RINGKV_RATE_LIMITED') assert.equal(res.headers.get('retry-after'), '3');
    }
  });

  test('cluster, ring, replicas, node and healthz describe the node', async () => {
    const cluster = (await (await fetch(`${h.base}/v1/cluster`)).json()) as { self: string; nodes: Array<{ id: string; liveness: string; keys: number }> };
    assert.equal(cluster.self, 'n1');
    assert.equal(cluster.nodes.length, 1);
    assert.equal(cluster.nodes[0]?.liveness, 'up');
    assert.equal(typeof cluster.nodes[0]?.keys, 'number');
    const ring = (await (await fetch(`${h.base}/v1/ring`)).json()) as { partitionCount: number; partitionsByNode: Record<string, number> };
    assert.equal(ring.partitionCount, 16384);
    assert.deepEqual(ring.partitionsByNode, { n1: 16384 });
    const summary = (await (await fetch(`${h.base}/v1/ring?summary=true`)).json()) as Record<string, unknown>;
    assert.equal(summary['ranges'], undefined);
    assert.equal(summary['rangeCount'], 1);
    assert.equal(summary['version'], '1');
    // Redis Cluster puts "foo" in slot 12182, and {user1}.a with user1.
    const replicas = (await (await fetch(`${h.base}/v1/replicas/foo`)).json()) as { partition: number; replicas: string[] };
    assert.equal(replicas.partition, 12182);
    assert.deepEqual(replicas.replicas, ['n1']);
    const tagged = (await (await fetch(`${h.base}/v1/replicas/${encodeURIComponent('{foo}.bar')}`)).json()) as { partition: number };
    assert.equal(tagged.partition, 12182);
    const health = await fetch(`${h.base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
  });

  test('the admin page is one self-contained HTML document', async () => {
    const res = await fetch(`${h.base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /<title>ringkv admin<\/title>/);
    assert.match(html, /\/v1\/cluster/);
    assert.doesNotMatch(html, /<script src=|<link [^>]*href=/, 'no external assets');
    assert.equal((await fetch(`${h.base}/admin`)).status, 200);
  });

  test('/metrics has per-command counters and latency histograms after traffic', async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${h.base}/v1/kv/m${i}`, { method: 'PUT', body: 'v' })).arrayBuffer();
    h.metrics.observe('resp', 'set', 0.2, true);
    h.metrics.observe('resp', 'get', 0.1, false);
    const res = await fetch(`${h.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const puts = /ringkv_requests_total\{protocol="http",command="kv.put",outcome="ok"\} (\d+)/.exec(text);
    assert.ok(puts && Number(puts[1]) >= 3, 'kv.put counted');
    assert.match(text, /ringkv_requests_total\{protocol="resp",command="set",outcome="ok"\} 1/);
    assert.match(text, /ringkv_requests_total\{protocol="resp",command="get",outcome="error"\} 1/);
    assert.match(text, /ringkv_request_duration_seconds_bucket\{le="0.0005",protocol="resp",command="set"\} 1/);
  });
});

describe('HTTP limits and authentication', () => {
  test('an oversized body is 413 RINGKV_PAYLOAD_TOO_LARGE, declared or streamed, and nothing is written', async () => {
    const h = await startServer({ maxValueBytes: 1000 });
    try {
      const res = await fetch(`${h.base}/v1/kv/big`, { method: 'PUT', body: Buffer.alloc(1001) });
      assert.equal(res.status, 413);
      const error = await errorOf(res);
      assert.equal(error.code, 'RINGKV_PAYLOAD_TOO_LARGE');
      assert.match(error.message, /1001 bytes: the limit is 1000/);
      // Chunked upload without a length: the limit still holds while streaming.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(400));
          controller.close();
        },
      });
      const chunked = await fetch(`${h.base}/v1/kv/big`, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
      assert.equal(chunked.status, 413);
      assert.equal(h.kv.calls.filter((c) => c.op === 'put').length, 0);
      // The server still serves after cutting those uploads off.
      assert.equal((await fetch(`${h.base}/v1/kv/small`, { method: 'PUT', body: Buffer.alloc(1000) })).status, 204);
    } finally {
      await h.server.close();
    }
  });

  test('a bearer token guards the API (401 JSON) but not /healthz or the admin page shell', async () => {
    const h = await startServer({ token: 's3cret' });
    try {
      const denied = await fetch(`${h.base}/v1/kv/a`);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="ringkv"');
      assert.equal((await errorOf(denied)).code, 'RINGKV_UNAUTHORIZED');
      const wrong = await fetch(`${h.base}/v1/cluster`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      assert.equal((await fetch(`${h.base}/metrics`)).status, 401);
      const ok = await fetch(`${h.base}/v1/kv/a`, { method: 'PUT', body: 'v', headers: { authorization: 'Bearer s3cret' } });
      assert.equal(ok.status, 204);
      assert.equal((await fetch(`${h.base}/healthz`)).status, 200);
      assert.equal((await fetch(`${h.base}/`)).status, 200);
    } finally {
      await h.server.close();
    }
  });

  test('/v1/settings lists runtime settings (secrets hidden) and PUT changes them like CONFIG SET', async () => {
    const settings = new Settings({ requirepass: 'hunter2' });
    const kv = new ScriptedKv();
    const server = new HttpServer({
      kv,
      cluster: new SingleNodeCluster({ id: 'n1', address: '', respAddress: null, httpAddress: null, dc: 'dc1', rack: 'r1' }),
      clock: new RealClock(),
      log: silentLogger,
      settings,
      maxValueBytes: () => settings.getInt('max-value-bytes'),
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const base = `http://127.0.0.1:${port}`;
    try {
      const list = (await (await fetch(`${base}/v1/settings`)).json()) as { settings: Array<{ name: string; value: string; mutable: boolean }> };
      const byName = new Map(list.settings.map((x) => [x.name, x]));
      assert.equal(byName.get('requirepass')?.value, '(set)');
      assert.doesNotMatch(JSON.stringify(list), /hunter2/);
      assert.equal(byName.get('wal-sync')?.mutable, false);

      assert.equal((await fetch(`${base}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(2000) })).status, 204);
      const set = await fetch(`${base}/v1/settings/max-value-bytes`, { method: 'PUT', body: '1500' });
      assert.equal(set.status, 200);
      assert.deepEqual(await set.json(), { name: 'max-value-bytes', value: '1500' });
      assert.equal(settings.getInt('max-value-bytes'), 1500);
      // The new limit applies to the very next request.
      assert.equal((await fetch(`${base}/v1/kv/k`, { method: 'PUT', body: Buffer.alloc(2000) })).status, 413);

      const cases: Array<[string, string, number, string]> = [
        ['no-such-setting', '1', 404, 'RINGKV_NOT_FOUND'],
        ['max-value-bytes', 'lots', 400, 'RINGKV_INVALID_ARGUMENT'],
        ['wal-sync', 'none', 409, 'RINGKV_CONFLICT'],
      ];
      for (const [name, value, status, code] of cases) {
        const res = await fetch(`${base}/v1/settings/${name}`, { method: 'PUT', body: value });
        assert.equal(res.status, status, name);
        assert.equal((await errorOf(res)).code, code);
      }
    } finally {
      await server.close();
    }
  });

  test('close drains: healthz reports stopping and the port is released', async () => {
    const h = await startServer();
    await h.server.close();
    await assert.rejects(fetch(`${h.base}/healthz`));
  });
});
