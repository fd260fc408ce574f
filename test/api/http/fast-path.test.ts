/**
 * The fast path for /v1/kv (fast-path.ts) over real sockets: raw bytes for
 * pipelining, split and odd requests, node:http's client and curl for the
 * ordinary shapes. Everything the fast path does not handle must reach
 * node:http with its bytes intact, and responses must stay in request order.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { RealClock, silentLogger } from '../../../src/core/index.ts';
import { HttpServer } from '../../../src/api/http/index.ts';
import { parseFastRequest, serializeReply } from '../../../src/api/http/fast-path.ts';
import { SingleNodeCluster } from '../../../src/node/single-cluster.ts';
import { ScriptedKv } from './scripted-kv.ts';

const run = promisify(execFile);

interface Harness {
  kv: ScriptedKv;
  server: HttpServer;
  port: number;
}

async function startServer(options: { token?: string; maxValueBytes?: number } = {}): Promise<Harness> {
  const kv = new ScriptedKv();
  const cluster = new SingleNodeCluster({ id: 'n1', address: '127.0.0.1:1', respAddress: null, httpAddress: null, dc: 'dc1', rack: 'r1' });
  const server = new HttpServer({
    kv,
    cluster,
    clock: new RealClock(),
    log: silentLogger,
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.maxValueBytes === undefined ? {} : { maxValueBytes: () => options.maxValueBytes as number }),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { kv, server, port };
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Parses complete responses from `buf` (Content-Length, chunked, or none for 204/304); returns them and the bytes used. */
function parseResponses(buf: Buffer): { responses: RawResponse[]; used: number } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const lines = buf.toString('latin1', at, headEnd).split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    let bodyStart = headEnd + 4;
    let body: Buffer;
    if (status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (headers.get('transfer-encoding') === 'chunked') {
      const parts: Buffer[] = [];
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(buf.toString('latin1', p, lineEnd), 16);
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
        if (size === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
      body = Buffer.concat(parts);
      bodyStart = p;
    } else {
      const length = Number(headers.get('content-length') ?? '0');
      if (buf.length < bodyStart + length) break;
      body = buf.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    }
    responses.push({ status, headers, body });
    at = bodyStart;
  }
  return { responses, used: at };
}

/**
 * Sends `pieces` over one connection (a short pause between pieces, so they
 * arrive as separate reads) and collects `expected` responses.
 */
async function exchange(port: number, pieces: Array<string | Buffer>, expected: number, pauseMs = 5): Promise<{ responses: RawResponse[]; closed: boolean }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  let closed = false;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${parseResponses(received).responses.length} of ${expected} responses within 5 s: ${received.toString('latin1').slice(0, 400)}`)), 5000);
    const check = (): void => {
      if (parseResponses(received).responses.length >= expected || closed) {
        clearTimeout(timer);
        resolve();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      check();
    });
    socket.on('close', () => {
      closed = true;
      check();
    });
    socket.on('error', () => {});
  });
  for (const piece of pieces) {
    socket.write(piece);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  await done;
  // A close right after the last response is part of what some tests check.
  await new Promise((r) => setTimeout(r, 30));
  socket.destroy();
  return { responses: parseResponses(received).responses, closed };
}

const put = (key: string, value: string, extra = ''): string => `PUT /v1/kv/${key}?w=2 HTTP/1.1\r\nHost: x\r\n${extra}Content-Length: ${Buffer.byteLength(value)}\r\n\r\n${value}`;
const get = (key: string, extra = ''): string => `GET /v1/kv/${key}?r=2 HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

describe('HTTP fast path', () => {
  let h: Harness;
  before(async () => {
    h = await startServer({ maxValueBytes: 1024 });
  });
  after(async () => {
    await h.server.close();
  });

  test('pipelined fast requests are answered in request order on one write', async () => {
    const requests = [];
    for (let i = 0; i < 20; i++) requests.push(put(`p${i}`, `value-${i}`));
    for (let i = 0; i < 20; i++) requests.push(get(`p${i}`));
    const { responses } = await exchange(h.port, [requests.join('')], 40);
    assert.equal(responses.length, 40);
    for (let i = 0; i < 20; i++) assert.equal(responses[i]?.status, 204);
    for (let i = 0; i < 20; i++) {
      const r = responses[20 + i] as RawResponse;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `value-${i}`);
      assert.equal(r.headers.get('content-type'), 'application/octet-stream');
      assert.equal(r.headers.get('connection'), 'keep-alive');
      assert.ok(r.headers.get('date'));
    }
  });

  test('a request split into single bytes is read whole', async () => {
    const bytes = Buffer.from(put('split', 'abc', 'X-Ringkv-Context: CQk=\r\n') + get('split'));
    const pieces = [...bytes].map((b) => Buffer.from([b]));
    const { responses } = await exchange(h.port, pieces, 2, 0);
    assert.deepEqual(responses.map((r) => r.status), [204, 200]);
    assert.equal(responses[1]?.body.toString(), 'abc');
    const options = h.kv.calls.find((c) => c.op === 'put' && c.key === 'split')?.options as { context?: Uint8Array } | undefined;
    assert.deepEqual([...(options?.context ?? [])], [9, 9]);
  });

  test('other routes are handed to node:http mid-connection, after earlier responses, with their bytes intact', async () => {
    const stream = put('h1', 'one') + 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' + get('h1') + 'POST /v1/kv/c/incr?by=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
    const { responses } = await exchange(h.port, [stream], 4);
    assert.deepEqual(responses.map((r) => r.status), [204, 200, 200, 200]);
    assert.equal(JSON.parse(responses[1]?.body.toString() ?? '{}').status, 'ok');
    assert.equal(responses[2]?.body.toString(), 'one');
    assert.equal(JSON.parse(responses[3]?.body.toString() ?? '{}').value, '5');
  });

  test('a chunked PUT body goes through node:http and is stored whole', async () => {
    // node:http runs pipelined requests at once, so the GET goes after the PUT's answer.
    const { responses } = await exchange(h.port, ['PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n', get('chunked')], 2, 100);
    assert.deepEqual(responses.map((r) => r.status), [204, 200]);
    assert.equal(responses[1]?.body.toString(), 'abcdefg');
  });

  test('Expect: 100-continue, HTTP/1.0 and HEAD are handed off and answered by node:http', async () => {
    const expect = await exchange(h.port, ['PUT /v1/kv/e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', 'hi'], 2);
    assert.deepEqual(expect.responses.map((r) => r.status), [100, 204]);
    // HTTP/1.0 without keep-alive: the body runs to the close.
    const old = await exchange(h.port, ['GET /v1/kv/e HTTP/1.0\r\n\r\n'], 1);
    assert.equal(old.responses[0]?.status, 200);
    assert.equal(old.closed, true);
    const head = await exchange(h.port, ['HEAD /v1/kv/e HTTP/1.1\r\nHost: x\r\n\r\n'], 1);
    assert.equal(head.responses[0]?.status, 405);
  });

  test('a body over the value limit gets 413 from node:http, and nothing is written', async () => {
    const calls = h.kv.calls.length;
    const { responses } = await exchange(h.port, [`PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'x'.repeat(2000)}`], 1);
    assert.equal(responses[0]?.status, 413);
    assert.equal(h.kv.calls.length, calls);
  });

  test('pipelined PUT then GET of one key: the GET waits for the write and sees it', async () => {
    const requests: string[] = [];
    for (let i = 0; i < 10; i++) requests.push(put('seq', `v${i}`), get('seq'));
    const { responses } = await exchange(h.port, [requests.join('')], 20);
    for (let i = 0; i < 10; i++) {
      assert.equal(responses[2 * i]?.status, 204);
      assert.equal(responses[2 * i + 1]?.body.toString(), `v${i}`);
    }
  });

  test('a malformed header line is handed off and node:http answers 400', async () => {
    const { responses } = await exchange(h.port, ['GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'], 1);
    assert.equal(responses[0]?.status, 400);
  });

  test('Connection: close is honoured: the response says so and the socket closes', async () => {
    const { responses, closed } = await exchange(h.port, [get('p1', 'Connection: close\r\n') + get('p2')], 1);
    assert.equal(responses.length, 1);
    assert.equal(responses[0]?.headers.get('connection'), 'close');
    assert.equal(closed, true);
  });

  test('errors keep their status and JSON shape: a context header given twice is 400', async () => {
    const { responses } = await exchange(h.port, [put('twice', 'v', 'X-Ringkv-Context: CQk=\r\nX-Ringkv-Context: CQk=\r\n')], 1);
    assert.equal(responses[0]?.status, 400);
    assert.equal(JSON.parse(responses[0]?.body.toString() ?? '{}').error.code, 'RINGKV_INVALID_ARGUMENT');
    const missing = await exchange(h.port, [get('never-written')], 1);
    assert.equal(missing.responses[0]?.status, 404);
  });

  test('node:http keep-alive client: 200 sequential requests on one socket', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      for (let i = 0; i < 200; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const body = Buffer.from(`v${i}`);
          const req = httpRequest({ agent, host: '127.0.0.1', port: h.port, method: i % 2 === 0 ? 'PUT' : 'GET', path: `/v1/kv/ka${i >> 1}`, headers: i % 2 === 0 ? { 'content-length': body.length } : {} }, (res) => {
            sockets.add(res.socket);
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              if (i % 2 === 1) assert.equal(Buffer.concat(chunks).toString(), `v${i - 1}`);
              resolve(res.statusCode ?? 0);
            });
          });
          req.on('error', reject);
          req.end(i % 2 === 0 ? body : undefined);
        });
        assert.equal(status, i % 2 === 0 ? 204 : 200);
      }
      assert.equal(sockets.size, 1);
    } finally {
      agent.destroy();
    }
  });

  test('curl: PUT with context, GET, and a percent-encoded binary key', async () => {
    const base = `http://127.0.0.1:${h.port}`;
    const putOut = await run('curl', ['-s', '-i', '-X', 'PUT', '--data-binary', 'curl-value', '-H', 'X-Ringkv-Context: CQk=', `${base}/v1/kv/bin%00k`]);
    assert.match(putOut.stdout, /^HTTP\/1\.1 204/);
    assert.match(putOut.stdout, /x-ringkv-context: CQk=/i);
    const getOut = await run('curl', ['-s', `${base}/v1/kv/bin%00k`, `${base}/v1/kv/bin%00k`]);
    assert.equal(getOut.stdout, 'curl-value'.repeat(2));
  });
});

describe('HTTP fast path, large bodies', () => {
  let h: Harness;
  before(async () => {
    h = await startServer();
  });
  after(async () => {
    await h.server.close();
  });

  test('a 4 MiB PUT arriving in many reads is stored whole, and the next request on the connection is served', async () => {
    const value = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
    const head = Buffer.from(`PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: ${value.length}\r\n\r\n`);
    const pieces: Buffer[] = [head];
    for (let at = 0; at < value.length; at += 256 * 1024) pieces.push(value.subarray(at, at + 256 * 1024));
    pieces.push(Buffer.from(get('big')));
    const { responses } = await exchange(h.port, pieces, 2, 1);
    assert.deepEqual(responses.map((r) => r.status), [204, 200]);
    assert.ok(responses[1]?.body.equals(value), 'the value read back is the value written');
  });
});

describe('HTTP fast path when serving itself fails', () => {
  test('an error escaping the route still answers (500) and later pipelined requests are served', async () => {
    const kv = new ScriptedKv();
    const cluster = new SingleNodeCluster({ id: 'n1', address: '127.0.0.1:1', respAddress: null, httpAddress: null, dc: 'dc1', rack: 'r1' });
    let calls = 0;
    // A metrics sink that fails once: the one step of serving outside the route's own error handling.
    const metrics = {
      observe(): void {
        if (calls++ === 0) throw new Error('metrics sink failed');
      },
    } as unknown as NonNullable<ConstructorParameters<typeof HttpServer>[0]['metrics']>;
    const server = new HttpServer({ kv, cluster, clock: new RealClock(), log: silentLogger, metrics });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const { responses } = await exchange(port, [put('m', 'v') + get('m')], 2);
      assert.deepEqual(responses.map((r) => r.status), [500, 200]);
      assert.equal(JSON.parse(responses[0]?.body.toString() ?? '{}').error.code, 'RINGKV_INTERNAL');
    } finally {
      await server.close();
    }
  });
});

describe('HTTP fast path with a token', () => {
  let h: Harness;
  before(async () => {
    h = await startServer({ token: 'sekrit' });
  });
  after(async () => {
    await h.server.close();
  });

  test('a kv request without the bearer token is 401; with it, served', async () => {
    const denied = await exchange(h.port, [get('k')], 1);
    assert.equal(denied.responses[0]?.status, 401);
    assert.equal(denied.responses[0]?.headers.get('www-authenticate'), 'Bearer realm="ringkv"');
    const allowed = await exchange(h.port, [put('k', 'v', 'Authorization: Bearer sekrit\r\n')], 1);
    assert.equal(allowed.responses[0]?.status, 204);
  });
});

describe('parseFastRequest', () => {
  test('waits for the head and the body, hands off what it does not serve', () => {
    assert.equal(parseFastRequest(Buffer.from('GET /v1/kv/a HTTP/1.1\r\nHost'), 100).kind, 'wait');
    assert.equal(parseFastRequest(Buffer.from('PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab'), 100).kind, 'wait');
    for (const head of [
      'POST /v1/kv/a/incr HTTP/1.1\r\n\r\n',
      'GET /v1/kv/a/incr HTTP/1.1\r\n\r\n',
      'GET /v1/ring HTTP/1.1\r\n\r\n',
      'GET /v1/kv/a HTTP/1.0\r\n\r\n',
      'GET http://x/v1/kv/a HTTP/1.1\r\n\r\n',
      'PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx',
      'PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 101\r\n\r\n',
      'GET /v1/kv/a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      'GET /v1/kv/a HTTP/1.1\r\n Folded: x\r\n\r\n',
      'GET /v1/kv/a HTTP/1.1\nHost: x\n\n',
    ]) {
      assert.equal(parseFastRequest(Buffer.from(head), 100).kind, 'handOff', head);
    }
    assert.equal(parseFastRequest(Buffer.from(`GET /v1/kv/a HTTP/1.1\r\nX: ${'y'.repeat(20_000)}`), 100).kind, 'handOff');
  });

  test('a served request: parts, body copy and bytes consumed', () => {
    const bytes = Buffer.from('PUT /v1/kv/k%20y?w=2&ttl=5 HTTP/1.1\r\ncontent-length: 3\r\nAccept: a\r\nACCEPT: b\r\nx-ringkv-context: Zm9v\r\n\r\nabcGET');
    const parsed = parseFastRequest(bytes, 100);
    assert.equal(parsed.kind, 'request');
    if (parsed.kind !== 'request') return;
    assert.equal(parsed.request.method, 'PUT');
    assert.equal(parsed.request.keySegment, 'k%20y');
    assert.equal(parsed.request.query, 'w=2&ttl=5');
    assert.equal(parsed.request.accept, 'a, b');
    assert.equal(parsed.request.context, 'Zm9v');
    assert.equal(Buffer.from(parsed.request.body).toString(), 'abc');
    assert.ok(parsed.request.body.buffer !== bytes.buffer, 'the body is a copy');
    assert.equal(parsed.consumed, bytes.length - 3);
    assert.equal(parsed.close, false);
  });

  test('header names in any case, values trimmed of spaces and tabs; control characters and bad names hand off', () => {
    const bytes = Buffer.from('PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH:\t2 \r\nX-Ringkv-Context:  Zm9v\t\r\nX-Other: \u00e9t\u00e9\r\nConnection: keep-alive, Close\r\n\r\nab', 'latin1');
    const parsed = parseFastRequest(bytes, 100);
    assert.equal(parsed.kind, 'request');
    if (parsed.kind !== 'request') return;
    assert.equal(parsed.request.context, 'Zm9v');
    assert.equal(Buffer.from(parsed.request.body).toString(), 'ab');
    assert.equal(parsed.close, true);
    for (const line of ['X-Bad: a\u0001b', 'Bad Name: x', 'B\u00e4d: x', ': x', 'Transfer-ENCODING: chunked', 'eXpect: 100-continue']) {
      const head = `GET /v1/kv/a HTTP/1.1\r\n${line}\r\n\r\n`;
      assert.equal(parseFastRequest(Buffer.from(head, 'latin1'), 100).kind, 'handOff', JSON.stringify(line));
    }
  });

  test('property: any split of a pipelined stream parses to the same requests', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.stringMatching(/^[a-z0-9]{1,8}$/), value: fc.uint8Array({ maxLength: 40 }), isPut: fc.boolean() }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (reqs, cuts) => {
          const stream = Buffer.concat(
            reqs.map((r) => (r.isPut ? Buffer.concat([Buffer.from(`PUT /v1/kv/${r.key} HTTP/1.1\r\nContent-Length: ${r.value.length}\r\n\r\n`), r.value]) : Buffer.from(`GET /v1/kv/${r.key} HTTP/1.1\r\n\r\n`))),
          );
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          let pending = Buffer.alloc(0);
          const seen: Array<{ key: string; body: string }> = [];
          let last = 0;
          for (const point of [...points, stream.length]) {
            pending = Buffer.concat([pending, stream.subarray(last, point)]);
            last = point;
            for (;;) {
              const parsed = parseFastRequest(pending, 100);
              if (parsed.kind !== 'request') {
                assert.equal(parsed.kind, 'wait');
                break;
              }
              seen.push({ key: parsed.request.keySegment, body: Buffer.from(parsed.request.body).toString('hex') });
              pending = pending.subarray(parsed.consumed);
            }
          }
          assert.deepEqual(seen, reqs.map((r) => ({ key: r.key, body: r.isPut ? Buffer.from(r.value).toString('hex') : '' })));
          assert.equal(pending.length, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('serializeReply: 204 has no Content-Length, bodies are counted in bytes', () => {
    const empty = serializeReply({ status: 204, headers: { 'x-ringkv-context': 'CQk=' }, body: undefined }, false, 'D').toString('latin1');
    assert.equal(empty, 'HTTP/1.1 204 No Content\r\nx-ringkv-context: CQk=\r\ndate: D\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n');
    const text = serializeReply({ status: 404, headers: {}, body: 'é' }, true, 'D').toString('latin1');
    assert.match(text, /content-length: 2\r\n/);
    assert.match(text, /connection: close\r\n\r\n/);
    assert.throws(() => serializeReply({ status: 200, headers: { bad: 'a\r\nb' }, body: undefined }, false, 'D'));
  });
});
